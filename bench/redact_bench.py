"""Redaction benchmark: recall per label, hard negatives altered per kind, and MB/s, ours vs a plain-library
baseline, on the tuning corpus (`redact_corpus.py`, realistic and PII-dense) and on the independent
evaluation corpus (`pii_eval/`, never tuned on), and on the held-out corpus of round two
(`redact_corpus_heldout.py`, never tuned on).

The baseline is what a typical script does with the same libraries: `phonenumbers.PhoneNumberMatcher`
over the text for each region, plus the common one-line regexes for emails, cards, IPs, SSNs, keys
and URLs, without validation. Both run in this process, on the same corpus, single-threaded; time is
this process's CPU time (`time.process_time`), which is its wall time on an idle machine and stays
meaningful on a shared one. With `--against REV` each corpus is also timed with the engine of that git
revision and this checkout's, in alternating fresh processes (`redact_against.py`), and both MB/s are printed
side by side: a machine shared with others slows both alike.

    python bench/redact_bench.py [--corpus tuning dense eval heldout] [--messages 20000] [--seed 7] [--misses 20]
                                 [--against main] [--rounds 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import phonenumbers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labeled import Sample, Score, failures, score
from milton_lora.redact import LABELS, Finding, Redactor
from pii_eval import EVAL_SEED, build_eval_corpus
from redact_against import alternate
from redact_corpus import build_corpus
from redact_corpus_heldout import HELDOUT_SEED, build_heldout_corpus

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


def timed(find: Finder, texts: list[str], runs: int) -> tuple[list[list[Finding]], float]:
    """Findings and the median CPU seconds of `runs` calls."""
    times = []
    for _ in range(runs):
        started = time.process_time()
        findings = find(texts)
        times.append(time.process_time() - started)
    return findings, statistics.median(times)


def report(title: str, corpus: list[Sample], misses: int, against: str | None = None, rounds: int = 3) -> None:
    texts = [sample.text for sample in corpus]
    megabytes = sum(len(text.encode("utf-8")) for text in texts) / 1e6
    ours = Redactor()
    ours.find_many(texts[:300])  # warm-up: phone patterns are compiled per country code on first use
    found, seconds = timed(ours.find_many, texts, 3)
    base_found, base_seconds = timed(BaselineRedactor().find_many, texts, 1)
    scores = {"milton-lora": score(corpus, found), "baseline": score(corpus, base_found)}
    speeds = {"milton-lora": megabytes / seconds, "baseline": megabytes / base_seconds}

    print(f"== {title}: {len(corpus)} messages, {megabytes:.2f} MB")
    print(f"{'label':<16}{'n':>7}" + "".join(f"{name + ' recall':>22}" for name in scores))
    for label in (label for label in LABELS if scores["milton-lora"].recall[label][1]):  # labels this corpus holds
        cells = "".join(f"{100 * s.recall_of(label):>21.2f}%" for s in scores.values())
        print(f"{label:<16}{scores['milton-lora'].recall[label][1]:>7}{cells}")
    print(f"\n{'hard negative':<18}{'n':>5}" + "".join(f"{name + ' altered':>22}" for name in scores))
    for kind, (_, total) in scores["milton-lora"].negatives.items():
        cells = "".join(f"{100 * s.negatives[kind][0] / total:>21.2f}%" for s in scores.values())
        print(f"{kind:<18}{total:>5}{cells}")
    print()
    for name, result in scores.items():
        print(summary_line(name, result, speeds[name]))
    print(f"speed ratio milton-lora / baseline: {speeds['milton-lora'] / speeds['baseline']:.1f}x\n")
    if against:
        theirs, ours = alternate(against, texts, rounds)
        print(
            f"alternating, median of {rounds} fresh processes each: this tree {megabytes / ours:.2f} MB/s, "
            f"{against} {megabytes / theirs:.2f} MB/s, ratio {theirs / ours:.2f}x\n"
        )
    for line in failures(corpus, found, lambda label: True)[:misses]:
        print("  miss:", line)


def summary_line(name: str, result: Score, speed: float) -> str:
    hits = sum(found for found, _ in result.recall.values())
    total = sum(n for _, n in result.recall.values())
    worst = min(result.recall, key=result.recall_of)
    altered = sum(a for a, _ in result.negatives.values())
    negatives = sum(n for _, n in result.negatives.values())
    return (
        f"{name:<12} recall {100 * hits / total:6.2f}% (lowest {worst} {100 * result.recall_of(worst):.2f}%), "
        f"negatives altered {100 * result.altered_share():5.2f}% ({altered} of {negatives}), {speed:7.2f} MB/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    corpora = ["tuning", "dense", "eval", "heldout"]
    parser.add_argument("--corpus", nargs="+", choices=corpora, default=corpora)
    parser.add_argument("--messages", type=int, default=20000, help="messages in each tuning corpus")
    parser.add_argument("--seed", type=int, default=7, help="seed of the tuning corpus")
    parser.add_argument("--misses", type=int, default=0, help="print this many misses and altered negatives")
    parser.add_argument("--against", metavar="REV", help="also time this git revision's engine, alternating runs")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each engine with --against")
    args = parser.parse_args()
    print("single-threaded, CPU time; milton-lora: median of 3 timed runs after a warm-up; baseline: 1 run\n")
    if "tuning" in args.corpus:
        corpus = build_corpus(args.messages, args.seed)
        report(f"tuning corpus, realistic (seed {args.seed})", corpus, args.misses, args.against, args.rounds)
    if "dense" in args.corpus:
        corpus = build_corpus(args.messages, args.seed, dense=True)
        report(f"tuning corpus, PII-dense (seed {args.seed})", corpus, args.misses, args.against, args.rounds)
    if "eval" in args.corpus:
        corpus = build_eval_corpus()
        report(f"evaluation corpus (pii_eval, seed {EVAL_SEED})", corpus, args.misses, args.against, args.rounds)
    if "heldout" in args.corpus:
        corpus = build_heldout_corpus()
        title = f"held-out corpus of round two (seed {HELDOUT_SEED})"
        report(title, corpus, args.misses, args.against, args.rounds)


if __name__ == "__main__":
    main()
