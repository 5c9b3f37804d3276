"""The promotion gate (`training` → `candidate`) and its thresholds in `training/eval/gate.yaml`.

An adapter becomes a candidate when every criterion holds: the benchmark pass rate reaches
`min_pass_rate`, no benchmark category is below the opponent's (production, or the base when none),
when a judge was asked, the win rate reaches `min_win_rate`, and, when style was measured, the adapter's
style match is not below the opponent's by more than `style_tolerance` (`style_not_below_opponent`), and, when the
export holds held-out preference pairs, the adapter's preference accuracy is not below the opponent's by more than
`preference_tolerance` (`preference_not_below_opponent`). The
`diagnosis` section holds the thresholds under which held-out metrics are called poor (they explain, they
do not gate).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from milton_lora.config import StrictModel, load_model
from milton_lora.evaluate.result import (
    Benchmarks,
    Criterion,
    GateDecision,
    HeadToHead,
    Opponent,
    Preferences,
    Style,
)


class DiagnosisThresholds(StrictModel):
    """When the adapter is said to have learned too little: relative to its base model, whatever the model's size."""

    min_loss_gain: float = Field(
        0.02, ge=0.0, lt=1.0, description="Held-out loss this share below the base model's, at least."
    )


class GateConfig(StrictModel):
    """`training/eval/gate.yaml` (optional; every key has a default)."""

    min_pass_rate: float = Field(0.9, ge=0.0, le=1.0, description="Benchmark pass rate required.")
    no_category_below_opponent: bool = Field(
        True, description="Refuse an adapter with any benchmark category below production's (or the base's)."
    )
    min_win_rate: float = Field(0.5, ge=0.0, le=1.0, description="Judged win rate required (when judged).")
    style_not_below_opponent: bool = Field(
        True, description="Refuse an adapter whose style match is below production's (or the base's)."
    )
    style_tolerance: float = Field(
        0.02, ge=0.0, le=1.0, description="How far below the opponent's style match still counts as not below."
    )
    preference_not_below_opponent: bool = Field(
        True,
        description="Refuse an adapter that prefers the person's chosen replies less often than production (or the "
        "base) does, on the held-out preference pairs (when there are any).",
    )
    preference_tolerance: float = Field(
        0.05, ge=0.0, le=1.0, description="How far below the opponent's preference accuracy still counts as not below."
    )
    diagnosis: DiagnosisThresholds = Field(default_factory=DiagnosisThresholds)


def load_gate(path: Path) -> GateConfig:
    """The gate thresholds from `path`, or the defaults when the file does not exist."""
    return load_model(path, GateConfig, defaults_if_missing=True)


def decide(
    gate: GateConfig,
    benchmarks: Benchmarks,
    head_to_head: HeadToHead | None,
    opponent: Opponent,
    auto_promote: bool,
    style: Style | None = None,
    preferences: Preferences | None = None,
) -> GateDecision:
    criteria = [pass_rate_criterion(gate, benchmarks)]
    if gate.no_category_below_opponent:
        criteria.append(category_criterion(benchmarks, opponent))
    if head_to_head is not None:
        criteria.append(win_rate_criterion(gate, head_to_head))
    if style is not None and gate.style_not_below_opponent:
        criteria.append(style_criterion(gate, style, opponent))
    if preferences is not None and gate.preference_not_below_opponent:
        criteria.append(preference_criterion(gate, preferences, opponent))
    return GateDecision(criteria=criteria, passed=all(c.passed for c in criteria), auto_promote=auto_promote)


def pass_rate_criterion(gate: GateConfig, benchmarks: Benchmarks) -> Criterion:
    ours = benchmarks.adapter
    return Criterion(
        name="benchmark pass rate",
        value=f"{ours.pass_rate:.0%} ({ours.passed}/{ours.total})",
        required=f"≥ {gate.min_pass_rate:.0%}",
        passed=ours.pass_rate >= gate.min_pass_rate,
    )


def category_criterion(benchmarks: Benchmarks, opponent: Opponent) -> Criterion:
    theirs = benchmarks.opponent.by_category
    below = [
        f"{name} {mine.pass_rate:.0%} < {theirs[name].pass_rate:.0%}"
        for name, mine in benchmarks.adapter.by_category.items()
        if name in theirs and mine.pass_rate < theirs[name].pass_rate
    ]
    return Criterion(
        name=f"categories vs {opponent.label}",
        value="none below" if not below else "below: " + ", ".join(below),
        required="none below",
        passed=not below,
    )


def win_rate_criterion(gate: GateConfig, head_to_head: HeadToHead) -> Criterion:
    h = head_to_head
    return Criterion(
        name=f"judged win rate vs {h.opponent}",
        value=f"{h.win_rate:.0%} (95% CI {h.ci_low:.0%}-{h.ci_high:.0%}; {h.wins}W {h.ties}T {h.losses}L)",
        required=f"≥ {gate.min_win_rate:.0%}",
        passed=h.win_rate >= gate.min_win_rate,
    )


def style_criterion(gate: GateConfig, style: Style, opponent: Opponent) -> Criterion:
    ours, theirs = style.adapter.score, style.opponent().score
    return Criterion(
        name=f"style match vs {opponent.label}",
        value=f"{ours:.2f} vs {theirs:.2f}",
        required=f"≥ {max(0.0, theirs - gate.style_tolerance):.2f}",
        passed=ours >= theirs - gate.style_tolerance,
    )


def preference_criterion(gate: GateConfig, preferences: Preferences, opponent: Opponent) -> Criterion:
    ours, theirs = preferences.adapter.accuracy, preferences.opponent().accuracy
    return Criterion(
        name=f"preference accuracy vs {opponent.label}",
        value=f"{ours:.0%} vs {theirs:.0%} of {preferences.pairs} held-out pairs",
        required=f"≥ {max(0.0, theirs - gate.preference_tolerance):.0%}",
        passed=ours >= theirs - gate.preference_tolerance,
    )
