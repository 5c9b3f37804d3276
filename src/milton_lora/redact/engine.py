"""The engine: `Redactor` scans a text (or a batch, joined in blocks), runs each detector at its anchors,
applies the person's own terms (`redact.yaml`), resolves overlaps by priority and replaces what it found
with `[LABEL]`.
"""

from __future__ import annotations

import bisect
import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from itertools import accumulate, repeat
from operator import add

from milton_lora.redact import anchors as kinds
from milton_lora.redact.anchors import Anchors, one_byte_per_character
from milton_lora.redact.codes import secret_codes
from milton_lora.redact.credentials import bearer_tokens, command_passwords, named_secrets
from milton_lora.redact.documents import identity_numbers
from milton_lora.redact.labels import DEFAULT_REGIONS, PRIORITY, Finding, Redaction, Span, apply
from milton_lora.redact.national import mixed_numbers
from milton_lora.redact.numbers import CHARACTER_CLASSES, NumberFinder, ibans
from milton_lora.redact.providers import aws_secrets_beside, discord_tokens, provider_keys, telegram_tokens
from milton_lora.redact.tables import phone_columns, ssn_columns
from milton_lora.redact.terms import PersonalTerms
from milton_lora.redact.web import SEPARATOR, emails, ipv6, jwts, private_keys, spelled_emails, urls

_BLOCK_CHARS = 1 << 20
_ANCHORS = Anchors()
# A Finding made from its (start, end, label) tuple directly: NamedTuple's generated `__new__` is a Python-level call,
# which a batch pays once per finding (about 2% of the export's time on PII-dense text).
_finding = partial(tuple.__new__, Finding)


class Redactor:
    """Find and replace PII and secrets. Stateless apart from its regions and terms; safe to share."""

    def __init__(self, regions: Iterable[str] = DEFAULT_REGIONS, terms: PersonalTerms | None = None):
        self.regions = tuple(regions)
        self.terms = terms or PersonalTerms()
        self._numbers = NumberFinder(self.regions)

    def find(self, text: str) -> list[Finding]:
        """Non-overlapping findings, in text order."""
        return [_finding(span) for span in self._spans(text)]

    def redact(self, text: str) -> Redaction:
        return apply(text, self.find(text))

    def find_many(self, texts: list[str]) -> list[list[Finding]]:
        """Findings for each text, scanning them joined in large blocks.

        Joining amortises the per-call cost of every scan over many messages, which is what makes the
        export fast. The separator starts with a newline and holds a NUL, which no pattern crosses; a
        text that itself holds a NUL is scanned on its own.
        """
        results: list[list[Finding]] = [[] for _ in texts]
        # Where each text ends in all of them joined without separators: a block's last text is found by bisection,
        # and whether any text of it holds a NUL by one search of the joined block, not by a loop over the texts.
        ends = list(accumulate(map(len, texts)))
        first = 0
        with _cyclic_gc_paused():
            while first < len(texts):
                last = min(
                    bisect.bisect_left(ends, (ends[first - 1] if first else 0) + _BLOCK_CHARS, first) + 1, len(texts)
                )
                block: Sequence[int] = range(first, last)
                chunk = texts[first:last]
                joined = SEPARATOR.join(chunk)
                if "\x00" in joined:
                    for index in block:
                        if "\x00" in texts[index]:
                            results[index] = self.find(texts[index])
                    block = [index for index in block if "\x00" not in texts[index]]
                    chunk = [texts[index] for index in block]
                    joined = SEPARATOR.join(chunk)
                self._find_block(joined, chunk, block, results)
                first = last
        return results

    def redact_many(self, texts: list[str]) -> list[Redaction]:
        return [apply(text, findings) for text, findings in zip(texts, self.find_many(texts), strict=True)]

    def _spans(self, text: str) -> list[Span]:
        latin = one_byte_per_character(text)
        classes = latin.translate(CHARACTER_CLASSES)
        hits = _ANCHORS.find(latin)
        anchors = hits.by_kind
        found_keys = provider_keys(text, hits.keys)
        found_keys += aws_secrets_beside(text, found_keys)
        candidates = [
            *found_keys,
            *discord_tokens(text, anchors[kinds.DISCORD]),
            *telegram_tokens(text, anchors[kinds.TELEGRAM]),
            *private_keys(text, anchors[kinds.PEM]),
            *jwts(text, anchors[kinds.JWT]),
            *urls(text, anchors[kinds.URL]),
            *emails(text, anchors[kinds.EMAIL]),
            *spelled_emails(text, anchors[kinds.SPELLED_AT]),
            *named_secrets(text, hits.names, anchors[kinds.REUSE], set(found_keys)),
            *command_passwords(text, hits.commands),
            *secret_codes(text, hits.code_cues),
            *identity_numbers(text, hits.document_cues),
            *bearer_tokens(text, anchors[kinds.BEARER]),
            *ipv6(text, anchors[kinds.DOUBLE_COLON]),
            *ssn_columns(text, anchors[kinds.SSN_CUE]),
            *phone_columns(text, anchors[kinds.PHONE_HEADER]),
        ]
        found_ibans = ibans(text, classes, anchors[kinds.IBAN])
        candidates += found_ibans
        candidates += mixed_numbers(text, classes)
        candidates += self._numbers.find(text, classes, found_ibans, anchors[kinds.SSN_CUE])
        chosen = resolve_overlaps(candidates)
        if self.terms:
            chosen = self.terms.apply(text, chosen)
        return chosen

    def _find_block(self, joined: str, chunk: list[str], block: Sequence[int], results: list[list[Finding]]) -> None:
        """The findings of `joined` (`chunk`, the texts `block`, joined by SEPARATOR), each given to its text."""
        if not block:
            return
        # Where each text starts in `joined`, and past the last one. Findings come in text order, so a finding's text
        # is looked up only when it starts past the text of the finding before it (about half of them on PII-dense
        # text, where this loop takes 4% of the time).
        starts = list(accumulate(map(add, map(len, chunk), repeat(len(SEPARATOR))), initial=0))
        limit = -1
        for start, end, label in self._spans(joined):
            if start >= limit:
                position = bisect.bisect_right(starts, start)
                base, limit = starts[position - 1], starts[position]
                add_finding = results[block[position - 1]].append
            add_finding(_finding((start - base, end - base, label)))


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a batch is scanned.

    A scan allocates hundreds of thousands of short-lived, acyclic objects (regex matches, tuples); with
    the collector on, those allocations keep triggering collections that walk the caller's whole heap
    (the conversations being exported), about 7% of the time in bench/redact_bench.py. Nothing is
    leaked: reference counting frees everything as usual, and the collector resumes afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def resolve_overlaps(candidates: list[Span]) -> list[Span]:
    """Keep the highest-priority finding where candidates overlap (then the earliest, then the longest).

    Candidates are split into clusters of mutually reachable overlaps; almost every cluster is a single
    finding, and only real clusters pay for the priority order.
    """
    ordered = sorted(candidates)
    chosen: list[Span] = []
    first, count = 0, len(ordered)
    while first < count:
        after, cluster_end = first + 1, ordered[first][1]
        while after < count and ordered[after][0] < cluster_end:
            if ordered[after][1] > cluster_end:
                cluster_end = ordered[after][1]
            after += 1
        if after == first + 1:
            chosen.append(ordered[first])
        else:
            chosen += _resolve_cluster(ordered[first:after])
        first = after
    return chosen


def _resolve_cluster(cluster: list[Span]) -> list[Span]:
    starts: list[int] = []
    chosen: list[Span] = []
    for finding in sorted(cluster, key=lambda f: (-PRIORITY[f[2]], f[0], f[0] - f[1])):
        index = bisect.bisect_right(starts, finding[0])
        if index > 0 and chosen[index - 1][1] > finding[0]:
            continue
        if index < len(chosen) and chosen[index][0] < finding[1]:
            continue
        starts.insert(index, finding[0])
        chosen.insert(index, finding)
    return chosen


_DEFAULT = Redactor()


def redact_text(text: str) -> str:
    """Redact with the default engine (the export's settings without personal terms)."""
    return _DEFAULT.redact(text).text
