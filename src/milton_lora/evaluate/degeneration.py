"""Answers that degenerate: empty, looping ("M. M. M. M."), or repeating whole lines.

Checked on every answer an evaluation generates, both sides (sanity prompts, benchmarks, the style
prompts), so a loop that starts after a good first sentence is caught too, wherever it shows. A loop is a
short run of tokens (up to `_MAX_PERIOD`) repeated back to back at least `_MIN_REPEATS` times and
covering at least `_MIN_LOOP_TOKENS` tokens; repeated lines are a line of at least `_MIN_LINE_WORDS` words
that comes back verbatim. Either is a finding in the evaluation's diagnosis, with the answers named.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from milton_lora.evaluate.result import DegenerateAnswer, Degeneration, Finding

_TOKEN = re.compile(r"\w+|[^\w\s]+")  # a run of punctuation ("---" of a table) is one token
_MAX_PERIOD = 8
_MIN_REPEATS = 4
_MIN_LOOP_TOKENS = 8
_MIN_LINE_WORDS = 4


def degenerate_kind(answer: str) -> str | None:
    """'empty', 'loop' or 'repeated lines'; None for an answer that is none of these."""
    if not answer.strip():
        return "empty"
    if has_loop(answer):
        return "loop"
    if has_repeated_lines(answer):
        return "repeated lines"
    return None


def has_loop(answer: str) -> bool:
    tokens = _TOKEN.findall(answer.lower())
    for period in range(1, _MAX_PERIOD + 1):
        run = 0  # tokens so far that equal the token `period` places before them
        for i in range(period, len(tokens)):
            run = run + 1 if tokens[i] == tokens[i - period] else 0
            repeats = run // period + 1
            if repeats >= _MIN_REPEATS and run + period >= _MIN_LOOP_TOKENS:
                return True
    return False


def has_repeated_lines(answer: str) -> bool:
    lines = [" ".join(line.lower().split()) for line in answer.splitlines()]
    counts = Counter(line for line in lines if len(line.split()) >= _MIN_LINE_WORDS)
    return any(count >= 2 for count in counts.values())


def check_answers(answers: Iterable[tuple[str, str, str]]) -> Degeneration:
    """(id, adapter's answer, opponent's answer) triples → the degenerate ones per side."""
    checked, ours, theirs = 0, [], []
    for answer_id, adapter, opponent in answers:
        checked += 1
        for side, text in ((ours, adapter), (theirs, opponent)):
            kind = degenerate_kind(text)
            if kind is not None:
                side.append(DegenerateAnswer(id=answer_id, kind=kind, answer=text))
    return Degeneration(answers=checked, adapter=ours, opponent=theirs)


def degeneration_findings(found: Degeneration, opponent: str) -> list[Finding]:
    """A finding when the adapter loops or repeats lines in more answers than the opponent (empty answers are
    the sanity diagnosis's)."""
    findings = []
    for kind in ("loop", "repeated lines"):
        ours = [a.id for a in found.adapter if a.kind == kind]
        theirs = [a.id for a in found.opponent if a.kind == kind]
        if len(ours) <= len(theirs):
            continue
        findings.append(
            Finding(
                signal=f"answers degenerate ({kind})",
                observed=f"{len(ours)} of {found.answers} adapter answers ({', '.join(ours[:8])}), "
                f"{opponent}: {len(theirs)}",
                causes=[
                    "a learning rate too high or too many epochs: the model collapsed onto a phrase or a format",
                    "training conversations with long repetitive assistant turns (logs, tables pasted back)",
                ],
                fixes=[
                    "train with a lower learning_rate or fewer num_epochs (the held-out loss curve shows where "
                    "it turned)",
                    "look for repetitive assistant turns in training/data/exported/train.jsonl",
                ],
            )
        )
    return findings
