"""Findings shown in context for a person to review (`milton-lora export --review`): the finding itself and a
window of text on each side in which every other finding is already replaced by its `[LABEL]`, so a
review never shows one secret beside another.
"""

from __future__ import annotations

from typing import NamedTuple

from milton_lora.redact.labels import Finding

WINDOW = 40


class InContext(NamedTuple):
    label: str
    value: str
    before: str
    after: str


def in_context(text: str, findings: list[Finding], window: int = WINDOW) -> list[InContext]:
    """Each finding with up to `window` characters of redacted text before and after it (placeholders whole)."""
    pieces: list[str] = []  # plain text and placeholders, alternating as they come
    finding_pieces: list[int] = []
    cursor = 0
    for finding in findings:
        pieces.append(text[cursor : finding.start])
        finding_pieces.append(len(pieces))
        pieces.append(f"[{finding.label}]")
        cursor = finding.end
    pieces.append(text[cursor:])
    placeholders = set(finding_pieces)
    return [
        InContext(
            finding.label,
            text[finding.start : finding.end],
            _window(pieces, range(index - 1, -1, -1), placeholders, window, from_end=True),
            _window(pieces, range(index + 1, len(pieces)), placeholders, window, from_end=False),
        )
        for finding, index in zip(findings, finding_pieces, strict=True)
    ]


def _window(pieces: list[str], order: range, placeholders: set[int], window: int, *, from_end: bool) -> str:
    taken: list[str] = []
    left = window
    for index in order:
        if left <= 0:
            break
        piece = pieces[index]
        if index not in placeholders and len(piece) > left:
            piece = piece[-left:] if from_end else piece[:left]
        taken.append(piece)
        left -= len(piece)
    return "".join(reversed(taken) if from_end else taken)
