"""Personal terms (`MILTON_HOME/redact.yaml`): what a person wants gone everywhere (`always`: family names,
a home address, an employer, project code names; strings or regexes, replaced by `[CUSTOM]` or the label
they give) and what must stay as written (`never`: strings kept even where a detector fires).

Strings match case-insensitively, as whole words where they start or end with a letter or digit; regexes
match as written (with the `regex` package, which can stop a match). A term that overlaps a finding is
merged into it, so no part of either is left. A regex that backtracks for longer than REGEX_TIMEOUT_S on
one text stops the command with an error naming it: a text it could not search is a text it could not
redact.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import regex

from milton_lora.errors import MiltonError
from milton_lora.redact.labels import CUSTOM, PRIORITY, Span

# Seconds one personal regex may take on one text (a message); real patterns take microseconds.
REGEX_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Term:
    """One `always` entry: a literal string, or a regex when `is_regex`, and the label that replaces it."""

    pattern: str
    is_regex: bool = False
    label: str = CUSTOM


class PersonalTerms:
    """The `always` and `never` lists, compiled once; empty (and false) when the person has none."""

    def __init__(self, always: Iterable[Term] = (), never: Iterable[str] = ()):
        always = list(always)
        literals = [term for term in always if not term.is_regex]
        self._literal_labels = {term.pattern.casefold(): term.label for term in literals}
        self._literals = _alternation((_literal(term.pattern) for term in literals), re.IGNORECASE)
        self._regexes = [(regex.compile(term.pattern), term.label) for term in always if term.is_regex]
        self._never = _alternation((re.escape(text) for text in never if text), re.IGNORECASE)

    def __bool__(self) -> bool:
        return bool(self._literals or self._regexes or self._never)

    def apply(self, text: str, chosen: list[Span]) -> list[Span]:
        """Drop findings that lie inside a `never` string, then add the `always` terms, merging overlaps."""
        kept = _outside(chosen, self._never_spans(text))
        terms = self._term_spans(text)
        if not terms:
            return kept
        return _merged(kept, _outside(terms, self._never_spans(text)))

    def _never_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in self._never.finditer(text)] if self._never else []

    def _term_spans(self, text: str) -> list[Span]:
        spans: list[Span] = []
        if self._literals:
            labels = self._literal_labels
            spans += [
                (m.start(), m.end(), labels.get(m.group().casefold(), CUSTOM)) for m in self._literals.finditer(text)
            ]
        for pattern, label in self._regexes:
            try:
                found = list(pattern.finditer(text, timeout=REGEX_TIMEOUT_S))
            except TimeoutError:
                raise MiltonError(
                    f"redact.yaml: the regex {pattern.pattern[:200]!r} took over {REGEX_TIMEOUT_S:g} s on one "
                    f"message of {len(text):,} characters (nested repetition like (a+)+ backtracks without end); "
                    "rewrite it without nested repetition"
                ) from None
            spans += [(m.start(), m.end(), label) for m in found if m.end() > m.start()]
        return spans


def _literal(text: str) -> str:
    escaped = re.escape(text)
    start = r"(?<!\w)" if text[:1].isalnum() else ""
    end = r"(?!\w)" if text[-1:].isalnum() else ""
    return f"{start}{escaped}{end}"


def _alternation(parts: Iterable[str], flags: int) -> re.Pattern[str] | None:
    joined = "|".join(sorted(parts, key=len, reverse=True))  # longest first: `Anna Maria` before `Anna`
    return re.compile(joined, flags) if joined else None


def _outside(spans: list[Span], protected: list[tuple[int, int]]) -> list[Span]:
    if not protected:
        return spans
    return [span for span in spans if not any(lo <= span[0] and span[1] <= hi for lo, hi in protected)]


def _merged(findings: list[Span], terms: list[Span]) -> list[Span]:
    """Findings and terms as one non-overlapping list: each cluster of overlaps becomes one span covering all
    of it, labeled by its highest-priority finding (a term alone keeps its own label)."""
    merged: list[Span] = []
    best = -1
    for start, end, label in sorted(findings + terms):
        rank = PRIORITY.get(label, 0)
        if merged and start < merged[-1][1]:
            previous = merged[-1]
            label_now = label if rank > best else previous[2]
            best = max(best, rank)
            merged[-1] = (previous[0], max(previous[1], end), label_now)
        else:
            merged.append((start, end, label))
            best = rank
    return merged
