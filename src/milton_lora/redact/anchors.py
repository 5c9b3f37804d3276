"""The anchor pass: every literal that starts (or sits inside) something a detector looks for, found in
one Aho-Corasick pass over the text (one byte per character).
"""

from __future__ import annotations

import re

import ahocorasick_rs

from milton_lora.redact.patterns import _PASSWORD_WORDS, _PROVIDER_KEYS, _SECRET_WORDS


def _case_spellings(phrase: str) -> set[str]:
    """`social security` as written: lower, UPPER, Title and Sentence case."""
    return {phrase, phrase.upper(), phrase.title(), phrase.capitalize()}


def _spellings(parts: tuple[str, ...]) -> set[str]:
    """`api key` as api_key, API_KEY, Api_key, Api_Key, api_Key, apikey, APIKEY, Apikey, ApiKey, apiKey, api-key..."""
    spellings = set()
    for joiner in ("_", "-", "") if len(parts) > 1 else ("",):
        lower = joiner.join(parts)
        titled = joiner.join(part.title() for part in parts)
        spellings |= {lower, lower.upper(), lower.capitalize(), titled, parts[0] + titled[len(parts[0]) :]}
    return spellings


class _Anchors:
    """Every literal that starts (or sits inside) something a detector looks for, found in one pass."""

    PEM, JWT, URL, EMAIL, DOUBLE_COLON, PASSWORD_NAME, SECRET_NAME, BEARER, SSN_CUE, KEY = range(10)

    def __init__(self) -> None:
        table: list[tuple[str, int, re.Pattern[str] | None]] = [
            ("-----BEGIN", self.PEM, None),
            ("eyJ", self.JWT, None),
            ("://", self.URL, None),
            ("@", self.EMAIL, None),
            ("::", self.DOUBLE_COLON, None),
            *((word, self.BEARER, None) for word in ("bearer", "Bearer", "BEARER")),
            *((word, self.SSN_CUE, None) for cue in ("ssn", "social security") for word in _case_spellings(cue)),
            *((word, self.PASSWORD_NAME, None) for parts in _PASSWORD_WORDS for word in sorted(_spellings(parts))),
            *((word, self.SECRET_NAME, None) for parts in _SECRET_WORDS for word in sorted(_spellings(parts))),
            *((prefix, self.KEY, pattern) for prefixes, pattern in _PROVIDER_KEYS for prefix in prefixes),
        ]
        self.kinds = [kind for _, kind, _ in table]
        self.patterns = [pattern for _, _, pattern in table]
        self.automaton = ahocorasick_rs.BytesAhoCorasick(
            [literal.encode() for literal, _, _ in table], implementation=ahocorasick_rs.Implementation.DFA
        )

    def find(self, latin: bytes) -> tuple[list[list[int]], list[tuple[int, re.Pattern[str]]]]:
        """Positions per kind, and provider-key positions with the pattern their prefix belongs to.

        `latin` is the text with one byte per character (see `_one_byte_per_character`); every anchor is
        ASCII, so its offsets there are its offsets in the text.
        """
        by_kind: list[list[int]] = [[] for _ in range(self.KEY)]
        keys = []
        kinds, patterns = self.kinds, self.patterns
        for index, start, _ in self.automaton.find_matches_as_indexes(latin, overlapping=True):
            kind = kinds[index]
            if kind == self.KEY:
                keys.append((start, patterns[index]))
            else:
                by_kind[kind].append(start)
        return by_kind, keys


_ANCHORS = _Anchors()
