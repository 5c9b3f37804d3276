"""What an evaluation found: the schema of `runs/<run_id>/metrics.json`, `sanity_responses.json` and
`judgements.jsonl`, `style_replies.json`, in one place.

`eval` writes these models, `milton-lora eval --json` prints `EvalResult`, `milton-lora report` and
`milton-lora cycle` read them back; nobody else spells their keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ValidationError

from milton_lora.errors import MiltonError

# The files of `runs/<run_id>/` an evaluation writes.
METRICS_FILE = "metrics.json"
SANITY_FILE = "sanity_responses.json"
JUDGEMENTS_FILE = "judgements.jsonl"
STYLE_FILE = "style_replies.json"
# What the registry stores and the deltas compare.
HEADLINE_METRICS = ("eval_loss", "perplexity", "token_accuracy")
Outcome = Literal["win", "tie", "loss"]
Verdict = Literal["adapter", "opponent", "tie", "unparsed"]
Source = Literal["held_out", "sanity", "style"]
Parsed = TypeVar("Parsed")


class Scores(BaseModel):
    """Held-out metrics on assistant tokens (None when nothing could be scored)."""

    eval_loss: float | None
    perplexity: float | None
    token_accuracy: float | None
    scored_tokens: int

    def headline(self) -> dict[str, float | None]:
        return {key: getattr(self, key) for key in HEADLINE_METRICS}

    def minus(self, other: Scores) -> dict[str, float | None]:
        ours, theirs = self.headline(), other.headline()
        return {k: None if ours[k] is None or theirs[k] is None else ours[k] - theirs[k] for k in HEADLINE_METRICS}


class ProductionScores(Scores):
    run_id: str


class Opponent(BaseModel):
    """Who the adapter is compared with: the production adapter, or the base model when there is none."""

    kind: Literal["production", "base"]
    run_id: str | None = None

    @property
    def label(self) -> str:
        return f"production {self.run_id}" if self.kind == "production" else "base"


class CategoryScore(BaseModel):
    passed: int
    total: int
    pass_rate: float


class SideBenchmarks(BaseModel):
    """One side's benchmark totals."""

    pass_rate: float
    passed: int
    total: int
    by_category: dict[str, CategoryScore]


class CheckOutcome(BaseModel):
    passed: bool
    detail: str
    answer: str


class BenchmarkResult(BaseModel):
    id: str
    category: str
    check: str
    adapter: CheckOutcome
    opponent: CheckOutcome


class Benchmarks(BaseModel):
    """The same tests, answered by both sides; `regressions`: the ids the opponent passes and the adapter fails."""

    adapter: SideBenchmarks
    opponent: SideBenchmarks
    results: list[BenchmarkResult]
    regressions: list[str]
    improvements: list[str]


class HeadToHead(BaseModel):
    """A judge's pairwise verdicts: a win counts only when both orders agree; win_rate counts a tie as half."""

    opponent: str
    judge_model: str
    prompts: int
    wins: int
    ties: int
    losses: int
    win_rate: float
    ci_low: float
    ci_high: float
    inconsistent: int
    unparsed: int
    mean_chars_adapter: float
    mean_chars_opponent: float


class Criterion(BaseModel):
    """One promotion criterion: what was measured, what it had to reach, and the verdict."""

    name: str
    value: str
    required: str
    passed: bool


class GateDecision(BaseModel):
    criteria: list[Criterion]
    passed: bool
    auto_promote: bool

    @property
    def promote(self) -> bool:
        return self.passed and self.auto_promote

    def failed(self) -> list[Criterion]:
        return [c for c in self.criteria if not c.passed]

    def summary(self) -> str:
        """One line: every criterion with its value and verdict."""
        return "; ".join(f"{c.name} {c.value} ({'ok' if c.passed else 'needs ' + c.required})" for c in self.criteria)


class Finding(BaseModel):
    """Something in the results that points at a problem, its likely causes, and what addresses them."""

    signal: str
    observed: str
    causes: list[str]
    fixes: list[str]


class FeatureMatch(BaseModel):
    """One feature: what the profile shows, what the replies show, and how well they agree (0-1)."""

    profile: str
    replies: str
    score: float


class StyleMatch(BaseModel):
    """How close a set of replies comes to the person's style: the mean of the features that count."""

    score: float
    replies: int
    features: dict[str, FeatureMatch]


class EdgePhrases(BaseModel):
    """Recurring openers or sign-offs (lower-case token strings) and the share of replies using one."""

    phrases: list[str]
    share: float


class StyleProfile(BaseModel):
    """What the person's kept assistant replies look like (`style_profile` builds it)."""

    replies: int
    median_words: float
    traits: dict[str, float]
    openers: EdgePhrases
    sign_offs: EdgePhrases
    language: str | None
    language_share: float
    conventions: dict[str, dict[str, float]]  # per kind, each form's share where the kind is used ({}: never)


class Style(BaseModel):
    """ "Sounds like you": the profile of the person's kept replies (the train split) and how close each side's
    replies to held-out prompts come to it; `held_out` scores the person's own replies to those prompts (the
    ceiling a perfect imitation would reach on them)."""

    profile: StyleProfile
    prompts: int
    adapter: StyleMatch
    production: StyleMatch | None
    base: StyleMatch
    held_out: StyleMatch
    judged: HeadToHead | None = None  # the judge's "which sounds more like the examples", when judged

    def opponent(self) -> StyleMatch:
        """What the gate compares with: production when there is one, else the base model."""
        return self.production or self.base


class StyleReply(BaseModel):
    """One entry of `style_replies.json`: a held-out prompt, the person's own reply, and each side's."""

    id: str
    messages: list[dict[str, str]]
    person: str
    adapter: str
    production: str | None
    base: str


class PreferenceSide(BaseModel):
    """One side on the held-out preference pairs (`evaluate/preference.py`): how often the chosen reply is the more
    likely one, by how much (nats), and, for an adapter, DPO's reward accuracy and margin relative to the base."""

    accuracy: float
    mean_margin: float
    reward_accuracy: float | None = None
    mean_reward_margin: float | None = None


class Preferences(BaseModel):
    """Preference accuracy on `preferences.jsonl`'s held-out pairs, per side."""

    file: str
    pairs: int
    adapter: PreferenceSide
    production: PreferenceSide | None
    base: PreferenceSide

    def opponent(self) -> PreferenceSide:
        """What the gate compares with: production when there is one, else the base model."""
        return self.production or self.base


class DegenerateAnswer(BaseModel):
    """An answer that is empty, loops, or repeats its lines: where it was given and what is wrong with it."""

    id: str
    kind: str
    answer: str


class Degeneration(BaseModel):
    """Every generated answer (sanity, benchmarks, style prompts) checked on both sides."""

    answers: int
    adapter: list[DegenerateAnswer]
    opponent: list[DegenerateAnswer]


class EvalResult(BaseModel):
    """`runs/<run_id>/metrics.json`."""

    run_id: str
    evaluated_at: str
    tool_version: str
    adapter_sha256: str
    test_file: str
    test_file_sha256: str
    test_conversations: int
    opponent: Opponent
    adapter: Scores
    base: Scores
    production: ProductionScores | None
    delta_vs_base: dict[str, float | None]
    delta_vs_production: dict[str, float | None] | None
    benchmarks: Benchmarks
    head_to_head: HeadToHead | None
    style: Style | None = None
    preferences: Preferences | None = None  # None: no held-out preference pairs
    degeneration: Degeneration | None = None
    gate: GateDecision
    diagnosis: list[Finding]
    status: str
    timings: dict[str, float]

    def registry_metrics(self) -> dict[str, float | None]:
        """What the registry keeps of this evaluation (`promote --list` and the confirmation block show it)."""
        judged = {"win_rate": self.head_to_head.win_rate} if self.head_to_head else {}
        styled = {"style_match": self.style.adapter.score} if self.style else {}
        preferred = {"preference_accuracy": self.preferences.adapter.accuracy} if self.preferences else {}
        return {**self.adapter.headline(), **judged, **styled, **preferred}


class SanityAnswer(BaseModel):
    """One entry of `sanity_responses.json`: the prompt and both sides' answers."""

    id: str
    messages: list[dict[str, str]]
    adapter: str
    opponent: str


class Judgement(BaseModel):
    """One line of `judgements.jsonl`: a prompt, both answers, the judge's two verdicts and the outcome.

    `verdicts[0]` saw the adapter's answer first, `verdicts[1]` the opponent's; each is mapped back to
    who it favoured; `raw` is what the judge wrote.
    """

    id: str
    source: Source
    messages: list[dict[str, str]]
    adapter: str
    opponent: str
    verdicts: list[Verdict]
    raw: list[str]
    outcome: Outcome


def read_result(path: Path) -> EvalResult | None:
    """metrics.json as written by this version; None when there is none; an error naming what to do otherwise."""
    return _read(path, EvalResult.model_validate_json) if path.exists() else None


def read_sanity(path: Path) -> list[SanityAnswer]:
    if not path.exists():
        return []
    return _read(path, lambda text: [SanityAnswer.model_validate(item) for item in json.loads(text)])


def read_style(path: Path) -> list[StyleReply]:
    if not path.exists():
        return []
    return _read(path, lambda text: [StyleReply.model_validate(item) for item in json.loads(text)])


def read_judgements(path: Path) -> list[Judgement]:
    if not path.exists():
        return []
    return _read(path, lambda text: [Judgement.model_validate_json(line) for line in text.splitlines() if line.strip()])


def _read(path: Path, parse: Callable[[str], Parsed]) -> Parsed:
    try:
        return parse(path.read_text())
    except (ValidationError, ValueError):
        raise MiltonError(
            f"{path}: not in this version's format; re-run milton-lora eval --run-id {path.parent.name}"
        ) from None
