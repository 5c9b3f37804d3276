"""Labeled messages shared by the redaction corpora (`redact_corpus.py`, the tuning corpus, and `pii_eval/`,
the evaluation corpus) and the scoring that `redact_bench.py` and the tests apply to both.

A message keeps the span of every value placed in it with its label: one of `milton_lora.redact.LABELS`
for something that must be redacted, `KEEP:<kind>` for a hard negative that must come out untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from milton_lora.redact import LABELS, Finding


@dataclass
class Sample:
    text: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, label or KEEP:kind)


class Builder:
    """Builds one message piece by piece, recording the span of each labeled slot."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.spans: list[tuple[int, int, str]] = []
        self.length = 0

    def text(self, piece: str) -> Builder:
        self.parts.append(piece)
        self.length += len(piece)
        return self

    def slot(self, value: str, label: str) -> Builder:
        self.spans.append((self.length, self.length + len(value), label))
        return self.text(value)

    def keep(self, value: str, kind: str) -> Builder:
        return self.slot(value, f"KEEP:{kind}")

    def build(self) -> Sample:
        return Sample("".join(self.parts), self.spans)


@dataclass
class Score:
    """Per label (found, total); per hard-negative kind (altered, total)."""

    recall: dict[str, tuple[int, int]]
    negatives: dict[str, tuple[int, int]]

    def recall_of(self, label: str) -> float:
        found, total = self.recall[label]
        return found / total if total else 1.0

    def altered_share(self) -> float:
        altered = sum(a for a, _ in self.negatives.values())
        return altered / max(1, sum(n for _, n in self.negatives.values()))

    def misses(self) -> list[str]:
        return [label for label in self.recall if self.recall_of(label) < 1.0]


def score(samples: list[Sample], findings: list[list[Finding]]) -> Score:
    """A span is found when one finding of its label covers it; a negative is altered when any finding touches it."""
    recall = {label: [0, 0] for label in LABELS}
    negatives: dict[str, list[int]] = {}
    for sample, found in zip(samples, findings, strict=True):
        for start, end, label in sample.spans:
            if label.startswith("KEEP:"):
                bucket = negatives.setdefault(label[5:], [0, 0])
                bucket[0] += any(f.start < end and f.end > start for f in found)
            else:
                bucket = recall[label]
                bucket[0] += any(f.label == label and f.start <= start and f.end >= end for f in found)
            bucket[1] += 1
    return Score({k: (v[0], v[1]) for k, v in recall.items()}, {k: (v[0], v[1]) for k, v in sorted(negatives.items())})


def failures(samples: list[Sample], findings: list[list[Finding]], keep: Callable[[str], bool]) -> list[str]:
    """Each missed span or altered negative whose label `keep` accepts, with its message (for debugging)."""
    lines = []
    for sample, found in zip(samples, findings, strict=True):
        for start, end, label in sample.spans:
            if not keep(label):
                continue
            value = sample.text[start:end]
            if label.startswith("KEEP:"):
                touching = [f for f in found if f.start < end and f.end > start]
                if touching:
                    lines.append(f"{label} {value!r} <- {[(sample.text[f.start : f.end], f.label) for f in touching]}")
            elif not any(f.label == label and f.start <= start and f.end >= end for f in found):
                near = [(sample.text[f.start : f.end], f.label) for f in found if f.start < end and f.end > start]
                lines.append(f"{label} {value!r} in {sample.text[max(0, start - 60) : end + 40]!r} found {near}")
    return lines
