"""Scoring: held-out metrics of each side, and the benchmark checks of both sides' answers compared.

Nothing here generates or writes; answers come in, typed results go out.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable

from milton_lora.evaluate.generation import ADAPTER, BASE, PRODUCTION, Sides
from milton_lora.evaluate.metrics import LmMetrics, masked_lm_metrics
from milton_lora.evaluate.result import BenchmarkResult, Benchmarks, CategoryScore, CheckOutcome, Scores, SideBenchmarks
from milton_lora.evaluate.sandbox import SandboxLimits
from milton_lora.evaluate.suites import BenchmarkTest, run_check

Examples = list[dict[str, list[int]]]


def held_out_scores(
    sides: Sides, examples: Examples, batch_size: int, advance: Callable[[int], None]
) -> dict[str, Scores]:
    """Scores of the adapter, the base and (when loaded) production, keyed by side name."""
    names = [ADAPTER, BASE] + ([PRODUCTION] if sides.opponent == PRODUCTION else [])
    scores = {}
    for name in names:
        with sides.using(name):
            found = masked_lm_metrics(sides.model, examples, sides.tokenizer.pad_token_id, batch_size, advance)
        scores[name] = to_scores(found)
    return scores


def to_scores(metrics: LmMetrics) -> Scores:
    def finite(value: float) -> float | None:
        return None if math.isnan(value) else value

    return Scores(
        eval_loss=finite(metrics.eval_loss),
        perplexity=finite(metrics.perplexity),
        token_accuracy=finite(metrics.token_accuracy),
        scored_tokens=metrics.scored_tokens,
    )


def score_benchmarks(
    tests: list[BenchmarkTest], answers: list[tuple[str, str]], sandbox: SandboxLimits, advance: Callable[[int], None]
) -> Benchmarks:
    """Both sides' answers checked; totals per side and category; the tests that regressed or improved."""
    results = []
    for test, (ours, theirs) in zip(tests, answers, strict=True):
        results.append(
            BenchmarkResult(
                id=test.id,
                category=test.category,
                check=test.check.type,
                adapter=_outcome(test, ours, sandbox),
                opponent=_outcome(test, theirs, sandbox),
            )
        )
        advance(1)
    return Benchmarks(
        adapter=side_totals([(r.category, r.adapter.passed) for r in results]),
        opponent=side_totals([(r.category, r.opponent.passed) for r in results]),
        results=results,
        regressions=[r.id for r in results if r.opponent.passed and not r.adapter.passed],
        improvements=[r.id for r in results if r.adapter.passed and not r.opponent.passed],
    )


def side_totals(outcomes: list[tuple[str, bool]]) -> SideBenchmarks:
    groups: dict[str, list[bool]] = defaultdict(list)
    for category, passed in outcomes:
        groups[category].append(passed)
    passed = sum(p for _, p in outcomes)
    return SideBenchmarks(
        pass_rate=passed / len(outcomes),
        passed=passed,
        total=len(outcomes),
        by_category={
            name: CategoryScore(passed=sum(v), total=len(v), pass_rate=sum(v) / len(v)) for name, v in groups.items()
        },
    )


def _outcome(test: BenchmarkTest, answer: str, sandbox: SandboxLimits) -> CheckOutcome:
    passed, detail = run_check(test.check, answer, sandbox)
    return CheckOutcome(passed=passed, detail=detail, answer=answer)
