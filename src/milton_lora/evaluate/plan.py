"""From the `eval` command's flags to a checked plan: which adapter, against whom, on what, judged by whom,
gated how. Every input is checked here, before a model is loaded; `--dry-run` prints the plan and stops.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from milton_lora.chat.conversations import Conversation, read_conversations
from milton_lora.errors import MiltonError
from milton_lora.evaluate.diagnosis import TrainingFacts
from milton_lora.evaluate.gate import GateConfig, load_gate
from milton_lora.evaluate.judge import JudgeSpec, is_loopback, normalize_url, remote_judge_refusal
from milton_lora.evaluate.options import EvalOptions
from milton_lora.evaluate.result import JUDGEMENTS_FILE, METRICS_FILE, SANITY_FILE, Opponent
from milton_lora.evaluate.sandbox import SandboxLimits
from milton_lora.evaluate.suites import BenchmarkFile, SanityFile, load_benchmarks, load_sanity, suite_path
from milton_lora.preferences import PreferencePair, read_preferences
from milton_lora.record import TrainingRecord, read_record, recorded_base_model
from milton_lora.registry import Registry
from milton_lora.settings import (
    ADAPTER_CONFIG,
    ADAPTER_METADATA,
    ADAPTER_WEIGHTS,
    EXPORT_PREFERENCES,
    Settings,
    env_value,
)

JUDGE_SAMPLE_SEED = 0


@dataclass(frozen=True, kw_only=True)
class EvalRequest(EvalOptions):
    """What the person asked for (the `eval` flags): which adapter, with the shared `EvalOptions`;
    `plan_evaluation` turns it into an `EvalPlan`."""

    run_id: str
    auto_promote: bool = True
    test_file: Path | None = None
    base_model: Path | None = None
    mixed_batches: bool = True


@dataclass(frozen=True)
class StylePrompt:
    """A held-out conversation cut before its last assistant reply, and that reply (the person's own)."""

    id: str
    messages: Conversation
    reply: str


@dataclass
class EvalPlan:
    run_id: str
    adapter_dir: Path
    run_dir: Path
    base_model: Path
    test_file: Path
    held_out: list[Conversation]
    sanity_path: Path
    sanity: SanityFile
    benchmarks_path: Path
    benchmarks: BenchmarkFile
    opponent: Opponent
    production_dir: Path | None
    gate_path: Path
    gate: GateConfig
    auto_promote: bool
    max_new_tokens: int
    max_seq_length: int
    batch_size: int
    facts: TrainingFacts
    judge: JudgeSpec | None = None
    judge_prompts: list[tuple[str, Conversation]] = field(default_factory=list)
    style_prompts: list[StylePrompt] = field(default_factory=list)
    style_replies: list[str] = field(default_factory=list)  # the person's kept assistant replies (train split)
    train_file: Path | None = None
    preference_file: Path | None = None
    preference_pairs: list[PreferencePair] = field(default_factory=list)  # the held-out ones
    mixed_batches: bool = True
    warnings: list[str] = field(default_factory=list)
    sandbox: SandboxLimits = field(default_factory=SandboxLimits)

    @property
    def command(self) -> str:
        return f"eval --run-id {self.run_id}"

    def rows(self) -> list[tuple[str, str]]:
        gate = self.gate
        judged = (
            f"{self.judge.model} at {self.judge.url}: {len(self.judge_prompts)} held-out + "
            f"{len(self.sanity.prompts)} sanity prompts, each judged in both orders"
            if self.judge
            else "no judge (add --judge-url URL --judge-model NAME)"
        )
        criteria = [f"pass rate ≥ {gate.min_pass_rate:.0%}"]
        if gate.no_category_below_opponent:
            criteria.append(f"no category below {self.opponent.label}")
        if self.preference_pairs and gate.preference_not_below_opponent:
            criteria.append(f"preference accuracy not below {self.opponent.label}'s")
        if self.judge:
            criteria.append(f"win rate ≥ {gate.min_win_rate:.0%}")
        outputs = [self.run_dir / name for name in (METRICS_FILE, SANITY_FILE)]
        outputs += [self.run_dir / JUDGEMENTS_FILE] if self.judge else []
        return [
            ("adapter", f"{self.run_id} ({self.adapter_dir})"),
            ("base model", str(self.base_model)),
            ("held-out split", f"{self.test_file} ({len(self.held_out)} conversations)"),
            ("opponent", f"{self.opponent.label}: same sanity prompts, benchmarks and greedy decoding"),
            ("sanity prompts", f"{len(self.sanity.prompts)} from {self.sanity_path}"),
            ("benchmarks", f"{len(self.benchmarks.tests)} tests from {self.benchmarks_path}"),
            ("judge", judged),
            ("style", self.style_row()),
            ("preferences", self.preference_row()),
            ("gate", f"{', '.join(criteria)} ({self.gate_path if self.gate_path.exists() else 'defaults'})"),
            (
                "promotion",
                "training → candidate when the gate passes" if self.auto_promote else "off (--no-auto-promote)",
            ),
            ("outputs", ", ".join(str(p) for p in outputs)),
        ]

    def preference_row(self) -> str:
        if not self.preference_pairs:
            return f"no held-out preference pairs in {self.preference_file}: not measured"
        sides = "adapter, production, base" if self.production_dir else "adapter, base"
        return (f"{len(self.preference_pairs)} held-out pairs from {self.preference_file}: how often {sides} find "
                "the chosen reply more likely")  # fmt: skip

    def style_row(self) -> str:
        if not self.style_prompts:
            return "not measured (--style-prompts 0, or no train split with assistant replies)"
        return (
            f"profile of {len(self.style_replies)} assistant replies in {self.train_file}; adapter, "
            f"{'production, ' if self.production_dir else ''}base answer {len(self.style_prompts)} held-out prompts"
        )


def plan_evaluation(settings: Settings, registry: Registry, request: EvalRequest) -> EvalPlan:
    """Resolve the run id, find every input, load the suites and the gate, check the judge: or raise."""
    run_id = registry.resolve(request.run_id)
    adapter_dir = registry.adapter_dir(run_id)
    check_adapter_files(adapter_dir, run_id)
    record = read_record(adapter_dir)
    test_file = request.test_file or test_file_of(record, settings.export_test_path)
    if not test_file.exists():
        raise MiltonError(f"{test_file}: held-out split not found; export first or pass --test-file")
    base = request.base_model or recorded_base_model(adapter_dir)
    if base is None:
        raise MiltonError(f"{adapter_dir}: no base model recorded; pass --base-model")
    if not (base / "config.json").exists():
        raise MiltonError(f"{base}: base model not found (recorded in {adapter_dir}/{ADAPTER_METADATA})")
    warnings: list[str] = []
    opponent, production_dir = choose_opponent(registry, run_id, base, warnings)
    sanity_path = suite_path(settings.eval_dir, "sanity_prompts.yaml", request.sanity)
    benchmarks_path = suite_path(settings.eval_dir, "benchmarks.yaml", request.benchmarks)
    gate = load_gate(settings.gate_path)
    if request.pass_threshold is not None:
        gate = gate.model_copy(update={"min_pass_rate": request.pass_threshold})
    held_out = read_conversations(test_file)
    plan = EvalPlan(
        run_id=run_id,
        adapter_dir=adapter_dir,
        run_dir=registry.run_dir(run_id),
        base_model=base,
        test_file=test_file,
        held_out=held_out,
        sanity_path=sanity_path,
        sanity=load_sanity(sanity_path),
        benchmarks_path=benchmarks_path,
        benchmarks=load_benchmarks(benchmarks_path),
        opponent=opponent,
        production_dir=production_dir,
        gate_path=settings.gate_path,
        gate=gate,
        auto_promote=request.auto_promote,
        max_new_tokens=request.max_new_tokens,
        max_seq_length=max_length_of(record),
        batch_size=request.batch_size,
        facts=TrainingFacts.from_record(run_id, record),
        mixed_batches=request.mixed_batches,
        warnings=warnings,
    )
    plan.train_file = train_file_of(record, settings.export_train_path)
    plan.preference_file, plan.preference_pairs = held_out_pairs(test_file)
    if request.style_prompts > 0 and plan.train_file is not None:
        # The person's style is in their own replies, not in the base model's restatements of their facts.
        plan.style_replies = assistant_replies(read_conversations(plan.train_file, restated=False))
        plan.style_prompts = style_prompts(held_out, request.style_prompts) if plan.style_replies else []
    if request.judge_url or request.judge_model:
        plan.judge = judge_of(request, plan)
        plan.judge_prompts = held_out_prompts(held_out, request.judge_prompts)
        check_judge_location(request, plan)
        warnings += self_judging(plan.judge.model, run_id, opponent, base)
    return plan


def choose_opponent(registry: Registry, run_id: str, base: Path, warnings: list[str]) -> tuple[Opponent, Path | None]:
    """Production when there is one (and it is another adapter on the same base), else the base model."""
    production = registry.load().production()
    if production is None or production.run_id == run_id:
        return Opponent(kind="base"), None
    if production.base_model_path and Path(production.base_model_path).resolve() != base.resolve():
        warnings.append(
            f"production {production.run_id} was trained on {production.base_model_path}, not {base}: "
            "comparing with the base model instead"
        )
        return Opponent(kind="base"), None
    return Opponent(kind="production", run_id=production.run_id), registry.path_of(production.adapter_path)


def judge_of(request: EvalRequest, plan: EvalPlan) -> JudgeSpec:
    if not (request.judge_url and request.judge_model):
        raise MiltonError(
            "eval: --judge-url and --judge-model go together (e.g. --judge-url "
            "http://127.0.0.1:8000/v1 --judge-model NAME)"
        )
    api_key = None
    if request.judge_api_key_env:
        api_key = env_value(request.judge_api_key_env)
        if not api_key:
            raise MiltonError(f"--judge-api-key-env {request.judge_api_key_env}: that variable is not set")
    return JudgeSpec(url=normalize_url(request.judge_url), model=request.judge_model, api_key=api_key,
                     max_tokens=request.judge_max_tokens)  # fmt: skip


def check_judge_location(request: EvalRequest, plan: EvalPlan) -> None:
    """The held-out conversations are the person's own: a judge elsewhere needs --allow-remote-judge."""
    assert plan.judge is not None
    if request.allow_remote_judge or is_loopback(plan.judge.url):
        return
    raise MiltonError(
        remote_judge_refusal(plan.judge.url, len(plan.judge_prompts), len(plan.sanity.prompts), str(plan.test_file))
    )


def self_judging(judge_model: str, run_id: str, opponent: Opponent, base: Path) -> list[str]:
    """A judge that is one of the two sides favours itself."""
    sides = {run_id, "milton", base.name} | ({opponent.run_id} if opponent.run_id else set())
    if judge_model in sides:
        return [
            f"the judge '{judge_model}' is one of the models it compares; a stronger, independent judge "
            "gives a fairer verdict"
        ]
    return []


def held_out_prompts(conversations: list[Conversation], limit: int) -> list[tuple[str, Conversation]]:
    """Up to `limit` held-out conversations (a fixed-seed sample, in file order), each cut before its last
    assistant reply: the last user turn with the conversation before it."""
    cut = [(f"held_out_{i + 1}", _up_to_last_user(c)) for i, c in enumerate(conversations)]
    usable = [(name, messages) for name, messages in cut if messages]
    if len(usable) <= limit:
        return usable
    chosen = sorted(random.Random(JUDGE_SAMPLE_SEED).sample(range(len(usable)), limit))
    return [usable[i] for i in chosen]


def style_prompts(conversations: list[Conversation], limit: int) -> list[StylePrompt]:
    """Up to `limit` held-out conversations (named and sampled as the judge's) whose last user turn the
    person's assistant answered: the prompt up to that turn, and the reply."""
    chosen = []
    for i, conversation in enumerate(conversations):
        messages = _up_to_last_user(conversation)
        reply = conversation[len(messages)] if messages and len(conversation) > len(messages) else None
        if reply is not None and reply["role"] == "assistant" and reply["content"].strip():
            chosen.append(StylePrompt(f"held_out_{i + 1}", messages, reply["content"]))
    if len(chosen) <= limit:
        return chosen
    picked = sorted(random.Random(JUDGE_SAMPLE_SEED).sample(range(len(chosen)), limit))
    return [chosen[i] for i in picked]


def held_out_pairs(test_file: Path) -> tuple[Path, list[PreferencePair]]:
    """The preferences file beside the held-out split (the export's), and its held-out pairs."""
    path = test_file.parent / EXPORT_PREFERENCES
    return path, [p for p in read_preferences(path) if isinstance(p, PreferencePair) and p.split == "test"]


def assistant_replies(conversations: list[Conversation]) -> list[str]:
    return [m["content"] for c in conversations for m in c if m["role"] == "assistant" and m["content"].strip()]


def _up_to_last_user(conversation: Conversation) -> Conversation:
    last = max((i for i, m in enumerate(conversation) if m["role"] == "user"), default=None)
    return [] if last is None else conversation[: last + 1]


def test_file_of(record: TrainingRecord | None, default: Path) -> Path:
    """The held-out split training used, when it is still there; else the current export's."""
    return _split_of(record, "test_file", default)


def train_file_of(record: TrainingRecord | None, default: Path) -> Path | None:
    """The train split the adapter learned from, when it is still there; else the current export's, if any."""
    found = _split_of(record, "train_file", default)
    return found if found.exists() else None


def _split_of(record: TrainingRecord | None, key: str, default: Path) -> Path:
    recorded = getattr(record.data, key) if record is not None else None
    return Path(recorded) if recorded and Path(recorded).exists() else default


def max_length_of(record: TrainingRecord | None) -> int:
    """Score conversations truncated as training truncated them."""
    return int(record.config_value("max_seq_length", 2048)) if record is not None else 2048


def check_adapter_files(adapter_dir: Path, run_id: str) -> None:
    missing = [name for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS) if not (adapter_dir / name).exists()]
    if missing:
        raise MiltonError(
            f"{adapter_dir}: no adapter {run_id} here (missing {', '.join(missing)}); list runs with --list"
        )
