"""Redaction benchmark: recall per label, hard negatives altered, and MB/s, ours vs a plain-library baseline.

The baseline is what a typical script does with the same libraries: `phonenumbers.PhoneNumberMatcher`
over the text for each region, plus the common one-line regexes for emails, cards, IPs, SSNs, keys
and URLs, without validation. Both run in this process, on the same corpus, single-threaded.

    python bench/redact_bench.py [--messages 20000] [--seed 7] [--dense]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import phonenumbers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from milton_lora.redact import DEFAULT_REGIONS, LABELS, Finding, Redactor
from redact_corpus import Sample, build_corpus

Finder = Callable[[list[str]], list[list[Finding]]]


class BaselineRedactor:
    """Unvalidated regexes plus phonenumbers' matcher: the usual first attempt."""

    PATTERNS: ClassVar[list[tuple[str, re.Pattern[str]]]] = [
        ("PRIVATE_KEY", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----")),
        ("JWT", re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")),
        ("URL_WITH_TOKEN", re.compile(r"https?://\S+[?&](?:token|access_token|key|api_key|sig)=\S+")),
        ("API_KEY", re.compile(r"\b(?:sk-[\w-]{20,}|ghp_\w{36}|AKIA[A-Z0-9]{16}|xox[bp]-[\w-]+|AIza[\w-]{35})")),
        ("EMAIL", re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")),
        ("CREDIT_CARD", re.compile(r"\b(?:\d[ -]?){13,16}\b")),
        ("IBAN", re.compile(r"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b")),
        ("SSN", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
        ("IP_ADDRESS", re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")),
        ("PASSWORD", re.compile(r"(?i)password\s*[=:]\s*(\S+)")),
    ]

    def find_many(self, texts: list[str]) -> list[list[Finding]]:
        return [self.find(text) for text in texts]

    def find(self, text: str) -> list[Finding]:
        found = [Finding(m.start(), m.end(), label) for label, pattern in self.PATTERNS for m in pattern.finditer(text)]
        for region in ("US", "GB", "DE", "FR"):
            found += [Finding(m.start, m.end, "PHONE") for m in phonenumbers.PhoneNumberMatcher(text, region)]
        return found


def score(corpus: list[Sample], find: Finder) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]], float]:
    """Recall per label, negatives altered per kind, and seconds spent finding."""
    recall: dict[str, list[int]] = {label: [0, 0] for label in LABELS}
    negatives: dict[str, list[int]] = {}
    started = time.perf_counter()
    all_findings = find([sample.text for sample in corpus])
    elapsed = time.perf_counter() - started
    for sample, findings in zip(corpus, all_findings, strict=True):
        for start, end, label in sample.spans:
            if label.startswith("KEEP:"):
                bucket = negatives.setdefault(label[5:], [0, 0])
                bucket[1] += 1
                bucket[0] += any(f.start < end and f.end > start for f in findings)
            else:
                recall[label][1] += 1
                recall[label][0] += any(f.label == label and f.start <= start and f.end >= end for f in findings)
    return (
        {k: (v[0], v[1]) for k, v in recall.items()},
        {k: (v[0], v[1]) for k, v in negatives.items()},
        elapsed,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dense", action="store_true", help="PII-packed short messages, no surrounding text")
    args = parser.parse_args()

    corpus = build_corpus(args.messages, args.seed, args.dense)
    megabytes = sum(len(s.text.encode("utf-8")) for s in corpus) / 1e6
    ours = Redactor(DEFAULT_REGIONS)
    # Warm up on other messages: phone patterns are compiled per country code on first use.
    ours.find_many([sample.text for sample in build_corpus(500, args.seed + 1, args.dense)])
    runs = sorted((score(corpus, ours.find_many) for _ in range(3)), key=lambda result: result[2])
    results = {"milton-lora": runs[1], "baseline": score(corpus, BaselineRedactor().find_many)}

    kind = "dense (PII-packed)" if args.dense else "realistic"
    print(f"corpus: {len(corpus)} {kind} messages, {megabytes:.2f} MB, seed {args.seed}")
    print("milton-lora: median of 3 timed runs after a warm-up on 500 other messages; baseline: 1 run")
    header = f"{'label':<16}{'n':>7}" + "".join(f"{name + ' recall':>22}" for name in results)
    print(header)
    for label in LABELS:
        total = results["milton-lora"][0][label][1]
        cells = "".join(f"{100 * r[0][label][0] / max(1, total):>21.2f}%" for r in results.values())
        print(f"{label:<16}{total:>7}{cells}")
    print()
    print(f"{'hard negative':<16}{'n':>7}" + "".join(f"{name + ' altered':>22}" for name in results))
    kinds = sorted(results["milton-lora"][1])
    for kind in kinds:
        total = results["milton-lora"][1][kind][1]
        cells = "".join(f"{100 * r[1][kind][0] / max(1, total):>21.2f}%" for r in results.values())
        print(f"{kind:<16}{total:>7}{cells}")
    print()
    for name, (recall, negatives, elapsed) in results.items():
        hits = sum(v[0] for v in recall.values())
        total = sum(v[1] for v in recall.values())
        altered = sum(v[0] for v in negatives.values())
        negative_total = sum(v[1] for v in negatives.values())
        worst = min(recall, key=lambda k: recall[k][0] / max(1, recall[k][1]))
        print(
            f"{name:<12} recall {100 * hits / total:6.2f}% (lowest {worst} "
            f"{100 * recall[worst][0] / max(1, recall[worst][1]):.2f}%), negatives altered "
            f"{100 * altered / negative_total:5.2f}%, {megabytes / elapsed:7.2f} MB/s"
        )
    ours_speed = megabytes / results["milton-lora"][2]
    base_speed = megabytes / results["baseline"][2]
    print(f"speed ratio milton-lora / baseline: {ours_speed / base_speed:.1f}x")


if __name__ == "__main__":
    main()
