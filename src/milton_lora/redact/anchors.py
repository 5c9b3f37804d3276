"""The anchor pass: every literal that starts (or sits inside) something a detector looks for, found in
one Aho-Corasick pass over the text (one byte per character): `@`, `://`, `::`, `eyJ`, `-----BEGIN`, each
provider's key prefix, the secret-looking names (`password`, `token`, `api_key`...), `bearer`, `ssn`,
the commands that take a password flag, the cues of codes (`PIN`, `door code`, `CVV`, `login`) and identity
documents (`passport`), and where an IBAN can start (an IBAN country's code and two digits: `DE89`). Each detector
then runs `match` at its anchors only, so the text is scanned once instead of once per detector.
"""

from __future__ import annotations

from typing import NamedTuple

import ahocorasick_rs

from milton_lora.redact.codes import CODE_CUES
from milton_lora.redact.credentials import (
    COMMANDS,
    PASSWORD_WORDS,
    REUSE_CUES,
    SECRET_WORDS,
    SHORT_WORDS,
    Name,
    NameKind,
)
from milton_lora.redact.cues import case_forms
from milton_lora.redact.documents import cue_spellings as document_cue_spellings
from milton_lora.redact.numbers import IBAN_LENGTHS
from milton_lora.redact.providers import DISCORD_STARTS, KEY_FORMATS, TELEGRAM_ANCHOR, KeyFormat
from milton_lora.redact.tables import HEADER_WORDS as PHONE_HEADER_WORDS
from milton_lora.redact.web import SPELLED_AT_ANCHORS

PEM, JWT, URL, EMAIL, DOUBLE_COLON, BEARER, SSN_CUE, PHONE_HEADER, REUSE, DISCORD, TELEGRAM, SPELLED_AT, IBAN = range(
    13
)
NAME, KEY, COMMAND, CODE, DOCUMENT = 13, 14, 15, 16, 17


KeyAnchor = tuple[int, int, KeyFormat]
CommandAnchor = tuple[int, int, str]
CueAnchor = tuple[int, int, None]


class Hits(NamedTuple):
    """What the anchor pass found: positions per kind (`by_kind[URL]`), then the anchors that carry their
    end and what they belong to."""

    by_kind: list[list[int]]
    names: list[Name]
    keys: list[KeyAnchor]
    commands: list[CommandAnchor]
    code_cues: list[CueAnchor]
    document_cues: list[CueAnchor]


def _spellings(word: str) -> set[str]:
    """`social security` in its case forms, and with an acronym first (`TOTP seed`)."""
    first, _, rest = word.partition(" ")
    return case_forms(word) | {f"{first.upper()} {rest}" if rest else word}


class Anchors:
    """Positions of every anchor in a text, by kind; provider keys and commands with what they belong to."""

    def __init__(self) -> None:
        table: list[tuple[str, int, object]] = [
            ("-----BEGIN", PEM, None),
            ("eyJ", JWT, None),
            ("://", URL, None),
            ("@", EMAIL, None),
            *((word, SPELLED_AT, None) for anchor in SPELLED_AT_ANCHORS for word in sorted({anchor, anchor.upper()})),
            ("::", DOUBLE_COLON, None),
            (TELEGRAM_ANCHOR, TELEGRAM, None),
            *((word, BEARER, None) for cue in ("bearer", "basic") for word in _spellings(cue)),
            *((word, SSN_CUE, None) for cue in ("ssn", "social security") for word in _spellings(cue)),
            *((word, PHONE_HEADER, None) for cue in PHONE_HEADER_WORDS for word in _spellings(cue)),
            *((word, REUSE, None) for word in REUSE_CUES),
            *((start, DISCORD, None) for start in DISCORD_STARTS),
            *(
                (spelling, NAME, NameKind(is_password, word in SHORT_WORDS))
                for words, is_password in ((PASSWORD_WORDS, True), (SECRET_WORDS, False))
                for word in words
                for spelling in sorted(_spellings(word))
            ),
            *((anchor, KEY, key_format) for key_format in KEY_FORMATS for anchor in key_format.anchors),
            *((command, COMMAND, command) for command in COMMANDS),
            *((word, CODE, None) for cue in CODE_CUES for word in sorted(_spellings(cue))),
            *((word, DOCUMENT, None) for word in document_cue_spellings()),
            # Found here rather than by a scan of their own: the automaton reads every byte once whatever it looks for
            # (these 8,900 literals cost it a quarter of what a separate scan for the shape costs).
            *((f"{country}{digits:02d}", IBAN, None) for country in IBAN_LENGTHS for digits in range(100)),
        ]
        self._kinds = [kind for _, kind, _ in table]
        self._payloads = [payload for _, _, payload in table]
        self._automaton = ahocorasick_rs.BytesAhoCorasick(
            # Latin-1, like the text they are found in (`contraseña`, `Türcode`).
            [literal.encode("latin-1") for literal, _, _ in table],
            implementation=ahocorasick_rs.Implementation.DFA,
        )

    def find(self, latin: bytes) -> Hits:
        """Every anchor in `latin`, by kind.

        `latin` is the text with one byte per character (`one_byte_per_character`); every anchor is ASCII,
        so its offsets there are its offsets in the text.
        """
        by_kind: list[list[int]] = [[] for _ in range(NAME)]
        extras: list[list[tuple[int, int, object]]] = [[] for _ in range(NAME, DOCUMENT + 1)]
        adders = [positions.append for positions in by_kind]
        kinds, payloads = self._kinds, self._payloads
        for index, start, end in self._automaton.find_matches_as_indexes(latin, overlapping=True):
            kind = kinds[index]
            if kind < NAME:
                adders[kind](start)
            else:
                extras[kind - NAME].append((start, end, payloads[index]))
        return Hits(by_kind, *extras)  # type: ignore[arg-type]


def one_byte_per_character(text: str) -> bytes:
    """The text in Latin-1, anything outside it as `?`: one byte per character, so offsets carry over."""
    return text.encode("latin-1", "replace")
