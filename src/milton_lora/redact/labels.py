"""What a redaction reports: the labels and their priority, a finding, a redacted text with its counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

LABELS = (
    "PRIVATE_KEY",
    "JWT",
    "URL_WITH_TOKEN",
    "PASSWORD",
    "API_KEY",
    "EMAIL",
    "IBAN",
    "CREDIT_CARD",
    "SSN",
    "ID_NUMBER",
    "IP_ADDRESS",
    "PHONE",
)
# Where findings overlap, the higher priority wins (a JWT inside a URL is one URL_WITH_TOKEN). Personal
# terms (`redact.yaml`, any label) rank below all of these and are merged into what they overlap.
PRIORITY = {label: len(LABELS) - rank for rank, label in enumerate(LABELS)}
CUSTOM = "CUSTOM"

DEFAULT_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "IN", "AU", "BR", "JP", "MX", "CH", "SE", "PL", "IE")


class Finding(NamedTuple):
    start: int
    end: int
    label: str


# Detectors pass plain (start, end, label) tuples around; a Finding is made only for what is reported.
Span = tuple[int, int, str]


@dataclass
class Redaction:
    text: str
    counts: Counter[str] = field(default_factory=Counter)


def apply(text: str, findings: list[Finding]) -> Redaction:
    """`text` with each finding replaced by `[LABEL]`, and how many of each label."""
    if not findings:
        return Redaction(text)
    pieces: list[str] = []
    cursor = 0
    counts: Counter[str] = Counter()
    for finding in findings:
        pieces.append(text[cursor : finding.start])
        pieces.append(f"[{finding.label}]")
        cursor = finding.end
        counts[finding.label] += 1
    pieces.append(text[cursor:])
    return Redaction("".join(pieces), counts)
