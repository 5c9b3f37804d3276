"""The independent evaluation corpus for redaction: labeled chat messages assembled from facts and shapes
this project did not write (published test cards, the IBAN registry's structures, libphonenumber's example
numbers, the secret formats documented by providers and encoded in gitleaks, trufflehog and
detect-secrets, the true and false positive shapes of their tests and of Presidio's recognizer tests),
each placed in chat contexts written for this corpus alone: prose, CSV, JSON, settings files, shell
commands, logs, links.

It is never used to tune `milton_lora.redact`: the tuning corpus is `bench/redact_corpus.py`. Both are
scored by `bench/redact_bench.py`. Its seed is fixed so that figures are comparable between runs.

    from pii_eval import build_eval_corpus
"""

from __future__ import annotations

import random

from labeled import Sample

from .lookalikes import LOOKALIKE_MAKERS
from .personal import PERSONAL_MAKERS
from .secrets import SECRET_MAKERS, Maker
from .values import Values

EVAL_SEED = 20250612
EVAL_MESSAGES = 4000
_MAKERS: list[tuple[Maker, int]] = [*SECRET_MAKERS, *PERSONAL_MAKERS, *LOOKALIKE_MAKERS]
_JOINERS = ["\n\n", "\n", " ", "\nalso: ", "\n\n---\n"]


def build_eval_corpus(messages: int = EVAL_MESSAGES, seed: int = EVAL_SEED) -> list[Sample]:
    """`messages` messages of one to three parts each, every part drawn from the makers by weight."""
    rng = random.Random(seed)
    values = Values(rng)
    makers = [maker for maker, _ in _MAKERS]
    weights = [weight for _, weight in _MAKERS]
    corpus = []
    for _ in range(messages):
        parts = [maker(values, rng) for maker in rng.choices(makers, weights, k=rng.choice([1, 1, 2, 3]))]
        corpus.append(_joined(parts, rng))
    return corpus


def _joined(parts: list[Sample], rng: random.Random) -> Sample:
    text, spans = "", []
    for part in parts:
        if text:
            text += rng.choice(_JOINERS)
        spans += [(start + len(text), end + len(text), label) for start, end, label in part.spans]
        text += part.text
    return Sample(text, spans)
