"""What the dashboard shows, gathered from the files the pipeline writes: the registry, each adapter's
metadata.json, the TensorBoard logs, the evaluation's files and the memory store with its lineage (read
through their owners). Nothing here writes, and nothing is kept between requests: a page is always the files
as they are now.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from milton_lora.errors import MiltonError
from milton_lora.evaluate.result import METRICS_FILE, SANITY_FILE, EvalResult, SanityAnswer, read_result, read_sanity
from milton_lora.fileio import sha256_bytes
from milton_lora.forgetting import ForgetPlan, adapters_that_learned, plan_forget
from milton_lora.memory import Conversation, MemoryStore
from milton_lora.memory.forget import ForgetQuery, select_conversations
from milton_lora.memory.models import SOURCE_ORIGINS, Feedback
from milton_lora.record import TrainingRecord, read_record
from milton_lora.registry import Entry, Registry, latest_note, validate_run_id
from milton_lora.report import number, read_scalars, run_health
from milton_lora.settings import RUN_HEALTH, Settings

RunState = Literal["registered", "running", "stopped"]


@dataclass(frozen=True)
class AdapterRow:
    """One row of the adapters table."""

    run_id: str
    status: str  # the registry status; for a run not registered yet: running or stopped
    created_at: str
    window: str  # the export window the adapter was trained on
    base: str
    eval_loss: float | None
    vs_production: float | None  # eval loss minus production's (negative: better)
    pass_rate: float | None
    win_rate: float | None
    health: str
    note: str
    taint: str = ""  # why it is tainted (it learned a forgotten conversation): it cannot be promoted


def adapter_rows(registry: Registry) -> list[AdapterRow]:
    """Every adapter, production first, then newest first; runs without an adapter yet (training now, or
    stopped by the health checks) follow."""
    data = registry.load()
    production = data.production()
    reference = production.metrics.get("eval_loss") if production else None
    entries = sorted(data.newest_first(), key=lambda e: e.status != "production")
    rows = [_registered_row(registry, entry, reference) for entry in entries]
    return rows + [_unregistered_row(registry, run_id) for run_id in unregistered_runs(registry)]


def _registered_row(registry: Registry, entry: Entry, reference: float | None) -> AdapterRow:
    training = read_record(registry.path_of(entry.adapter_path))
    data = training.data if training else None
    days = data.export_window_days if data else None
    window = f"{days} days to {(data.export_created_at or '')[:10]}" if data and days else "-"
    eval_loss = entry.metrics.get("eval_loss")
    delta = None if eval_loss is None or reference is None or entry.status == "production" else eval_loss - reference
    base_path = _base_path(entry, training)
    base = Path(base_path).name if base_path else "-"
    health = health_summary(run_health(training, registry.run_dir(entry.run_id)))
    return AdapterRow(entry.run_id, entry.status, entry.created_at, window, base, eval_loss, delta, entry.pass_rate,
                      entry.metrics.get("win_rate"), health, latest_note(entry) or "", taint_of(entry))  # fmt: skip


def _base_path(entry: Entry | None, training: TrainingRecord | None) -> str | None:
    return (entry.base_model_path if entry else None) or (training.base_model_path if training else None)


def taint_of(entry: Entry | None) -> str:
    return f"{entry.tainted.reason} ({entry.tainted.at})" if entry and entry.tainted else ""


def _unregistered_row(registry: Registry, run_id: str) -> AdapterRow:
    run_dir = registry.run_dir(run_id)
    state = run_state(registry, run_id)
    health = health_summary(run_health(None, run_dir)) if state == "stopped" else "-"
    return AdapterRow(run_id, state, _started(run_dir), "-", "-", None, None, None, None, health, "")


def unregistered_runs(registry: Registry) -> list[str]:
    """Runs under runs/ that logged training but are not in the registry, newest first."""
    if not registry.runs_dir.is_dir():
        return []
    known = registry.load().adapters
    runs = [p for p in registry.runs_dir.iterdir() if (p / "logs").is_dir() and p.name not in known]
    return [p.name for p in sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)]


def run_state(registry: Registry, run_id: str) -> RunState:
    """registered; stopped (the health checks stopped it: no adapter, a health.json); else running (or killed
    before it wrote its adapter: the page says when its logs last changed)."""
    if run_id in registry.load().adapters:
        return "registered"
    return "stopped" if (registry.run_dir(run_id) / RUN_HEALTH).exists() else "running"


def health_summary(health: dict[str, Any]) -> str:
    if not health:
        return "-"
    kinds = sorted({s["kind"].replace("_", " ") for s in health.get("signals", [])})
    return str(health.get("status", "?")) + (f" ({', '.join(kinds)})" if kinds else "")


def _started(run_dir: Path) -> str:
    return datetime.fromtimestamp(run_dir.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class LiveRun:
    """A run's progress as its TensorBoard logs show it now."""

    step: int | None
    loss: float | None
    eval_loss: float | None
    seconds_since_update: float | None


def live_run(run_dir: Path) -> LiveRun:
    scalars = read_scalars(run_dir / "logs")
    train, evals = scalars.get("train/loss", []), scalars.get("eval/loss", [])
    events = list((run_dir / "logs").glob("events.out.tfevents.*"))
    updated = max((p.stat().st_mtime for p in events), default=None)
    return LiveRun(train[-1][0] if train else None, train[-1][1] if train else None,
                   evals[-1][1] if evals else None, None if updated is None else time.time() - updated)  # fmt: skip


@dataclass
class Side:
    """One adapter of a comparison: its registry entry, training record and evaluation (any may be missing)."""

    run_id: str
    entry: Entry | None
    training: TrainingRecord | None
    result: EvalResult | None
    sanity: dict[str, SanityAnswer] = field(default_factory=dict)
    problem: str = ""  # why the evaluation could not be read


def adapter_dir_of(registry: Registry, run_id: str) -> Path:
    """Where a run's adapter is: as registered, else where training writes it."""
    entry = registry.load().adapters.get(validate_run_id(run_id))
    return registry.path_of(entry.adapter_path) if entry else registry.adapter_dir(run_id)


def side_of(registry: Registry, run_id: str) -> Side:
    entry = registry.load().adapters.get(validate_run_id(run_id))
    if entry is None and not registry.run_dir(run_id).is_dir():
        raise MiltonError(f"no adapter or run {run_id}")
    side = Side(run_id, entry, read_record(adapter_dir_of(registry, run_id)), None)
    run_dir = registry.run_dir(run_id)
    try:
        side.result = read_result(run_dir / METRICS_FILE)
        side.sanity = {answer.id: answer for answer in read_sanity(run_dir / SANITY_FILE)}
    except MiltonError as exc:
        side.problem = str(exc)
    return side


def compared_metrics(a: Side, b: Side) -> list[tuple[str, str, str]]:
    """(what, a's value, b's value) for the comparison table."""

    def rows(side: Side) -> dict[str, str]:
        training, result = side.training, side.result
        value = training.config_value if training else (lambda key, default="-": default)
        return {
            "status": side.entry.status if side.entry else "not registered",
            "created": side.entry.created_at if side.entry else "-",
            "base model": training.base_model.name if training and training.base_model else "-",
            "LoRA r / alpha": f"{value('lora_r', '-')} / {value('lora_alpha', '-')}",
            "learning rate": str(value("learning_rate", "-")),
            "steps": str(training.results.global_steps) if training else "-",
            "train conversations": str(training.data.train_examples) if training else "-",
            "export window (days)": str(training.data.export_window_days) if training else "-",
            "held-out eval loss": number(result.adapter.eval_loss if result else None, ".4f"),
            "perplexity": number(result.adapter.perplexity if result else None, ".2f"),
            "token accuracy": number(result.adapter.token_accuracy if result else None, ".2%"),
            "benchmarks passed": f"{result.benchmarks.adapter.passed}/{result.benchmarks.adapter.total}"
            if result
            else "-",
            "judge win rate": number(result.head_to_head.win_rate if result and result.head_to_head else None, ".0%"),
            "gate": ("passed" if result.gate.passed else "held") if result else "not evaluated",
            "health": health_summary(training.health or {}) if training else "-",
        }

    ours, theirs = rows(a), rows(b)
    return [(name, ours[name], theirs[name]) for name in ours]


def compared_answers(a: Side, b: Side) -> list[tuple[SanityAnswer, SanityAnswer]]:
    """The sanity prompts both evaluations answered, with each adapter's answer (matched by prompt id and
    text: a suite edited between the two evaluations is not compared across)."""
    return [(a.sanity[key], b.sanity[key]) for key in a.sanity
            if key in b.sanity and a.sanity[key].messages == b.sanity[key].messages]  # fmt: skip


def compared_benchmarks(a: Side, b: Side) -> list[tuple[str, str, Any, Any]]:
    """(test id, category, a's outcome, b's outcome) for the tests both evaluations ran."""
    if a.result is None or b.result is None:
        return []
    theirs = {r.id: r for r in b.result.benchmarks.results}
    return [(r.id, r.category, r.adapter, theirs[r.id].adapter) for r in a.result.benchmarks.results
            if r.id in theirs]  # fmt: skip


@dataclass(frozen=True)
class Learner:
    """A registered adapter that met a conversation: how (trained, replayed, inherited, evaluated), its stage,
    and its taint."""

    run_id: str
    created_at: str
    how: str
    status: str
    taint: str


@dataclass
class Whereabouts:
    """One stored conversation and everything the dashboard says about it: where it came from, where it went
    (the adapters that met it, what a forget would rewrite and taint) and the feedback on its replies."""

    conversation: Conversation
    origin: str
    learners: list[Learner]
    plan: ForgetPlan
    feedback: dict[int, Feedback]  # by the reply's position (0 = the first turn)


def search_memory(settings: Settings, text: str, limit: int) -> tuple[list[Conversation], int]:
    """The newest `limit` conversations that `memory forget --search TEXT` would match (all when `text` is
    empty), newest first, and how many matched."""
    with MemoryStore(settings.memory_db) as store:
        found = select_conversations(store, ForgetQuery(search=text))
    return newest_first(found)[:limit], len(found)


@dataclass(frozen=True)
class ForgetChoice:
    """What a forget from the dashboard takes: the conversations a query selects, what forgetting them rewrites
    and taints, and a digest of which they are (the confirmation carries it, so a forget takes exactly what
    the page showed)."""

    conversations: list[Conversation]
    plan: ForgetPlan
    digest: str


def forget_choice(settings: Settings, query: ForgetQuery) -> ForgetChoice:
    """What `memory forget` with `query` would take, newest first, and what that would rewrite and taint."""
    chosen, identities = forget_selection(settings, query)
    return ForgetChoice(chosen, plan_forget(settings, identities), selection_digest(identities))


def forget_selection(settings: Settings, query: ForgetQuery) -> tuple[list[Conversation], set[str]]:
    """The conversations `query` selects, newest first, and their identity hashes."""
    with MemoryStore(settings.memory_db) as store:
        chosen = select_conversations(store, query)
        return newest_first(chosen), {store.identity_hash(c.key) for c in chosen}


def selection_digest(identities: set[str]) -> str:
    """Which conversations a forget's confirmation listed, as one digest (`ForgetChoice.digest`)."""
    return sha256_bytes(" ".join(sorted(identities)).encode())


def newest_first(conversations: list[Conversation]) -> list[Conversation]:
    return sorted(conversations, key=lambda c: (c.created_at, c.id or 0), reverse=True)


def origin_of(conversation: Conversation) -> str:
    return SOURCE_ORIGINS.get(conversation.source, conversation.source)


def whereabouts(settings: Settings, registry: Registry, conversation_id: int) -> Whereabouts | None:
    with MemoryStore(settings.memory_db) as store:
        conversation = store.conversation(conversation_id)
        if conversation is None:
            return None
        identity = store.identity_hash(conversation.key)
        feedback = {position: given for (owner, position), given in store.feedback().items()
                    if owner == conversation_id}  # fmt: skip
    entries = registry.load().adapters
    learners = [Learner(run_id, created, how, entries[run_id].status, taint_of(entries[run_id]))
                for run_id, created, how in adapters_that_learned(registry, identity)]  # fmt: skip
    return Whereabouts(conversation, origin_of(conversation), learners, plan_forget(settings, {identity}), feedback)


@dataclass(frozen=True)
class SanitySide:
    """One column of a run's sanity answers: whose answers, which evaluation recorded them (or why there are
    none), and the answers by prompt (id and messages)."""

    title: str
    recorded: str
    answers: dict[str, str]

    def answer_to(self, asked: SanityAnswer) -> str | None:
        return self.answers.get(_asked(asked))


def _asked(answer: SanityAnswer) -> str:
    return json.dumps([answer.id, answer.messages], sort_keys=True)


def sanity_sides(registry: Registry, run_id: str) -> tuple[list[SanityAnswer], list[SanitySide]]:
    """A run's sanity prompts with three sides: the adapter, production and the base model. An evaluation
    records two (the adapter and its opponent); the third is taken from the evaluation that recorded it with
    the same prompts: production's own evaluation, or the newest evaluation on the same base that ran against
    the base model (both greedy). A side nobody recorded is named with why."""
    own = _evaluation_of(registry, run_id)
    if own is None:
        return [], []
    result, sanity = own
    adapter = SanitySide(f"adapter {run_id}", "this evaluation", {_asked(a): a.adapter for a in sanity})
    opponent = SanitySide(result.opponent.label, "this evaluation", {_asked(a): a.opponent for a in sanity})
    if result.opponent.kind == "production":
        return sanity, [adapter, opponent, _base_side(registry, run_id, result.opponent.run_id)]
    return sanity, [adapter, _production_side(registry, run_id), opponent]


def _evaluation_of(registry: Registry, run_id: str) -> tuple[EvalResult, list[SanityAnswer]] | None:
    run_dir = registry.run_dir(run_id)
    try:
        result = read_result(run_dir / METRICS_FILE)
        sanity = read_sanity(run_dir / SANITY_FILE)
    except MiltonError:
        return None  # the run page's evaluation section says what is wrong with the files
    return (result, sanity) if result is not None and sanity else None


def _base_of(registry: Registry, run_id: str) -> str | None:
    return _base_path(registry.load().adapters.get(run_id), read_record(adapter_dir_of(registry, run_id)))


def _production_side(registry: Registry, run_id: str) -> SanitySide:
    current = registry.load().production()
    if current is None:
        return SanitySide("production", "missing: there is no production adapter", {})
    title = f"production {current.run_id}"
    if current.run_id == run_id:
        return SanitySide(title, "missing: this adapter is production (it was evaluated against the base model)", {})
    if _base_of(registry, current.run_id) != _base_of(registry, run_id):
        return SanitySide(title, "missing: production is on another base model", {})
    other = _evaluation_of(registry, current.run_id)
    if other is None:
        return SanitySide(title, "missing: production has no evaluation with sanity answers", {})
    recorded = f"{current.run_id}'s own evaluation ({other[0].evaluated_at[:10]})"
    return SanitySide(title, recorded, {_asked(a): a.adapter for a in other[1]})


def _base_side(registry: Registry, run_id: str, production: str | None) -> SanitySide:
    """The base model's answers from another evaluation on the same base that ran against it: production's
    first (the likeliest), then the newest run's."""
    base = _base_of(registry, run_id)
    others = sorted((p.name for p in registry.runs_dir.iterdir() if p.is_dir()), reverse=True)
    for other in dict.fromkeys([*([production] if production else []), *others]):
        found = _evaluation_of(registry, other) if other != run_id else None
        if found and found[0].opponent.kind == "base" and _base_of(registry, other) == base:
            recorded = f"{other}'s evaluation ({found[0].evaluated_at[:10]}), which ran against the base model"
            return SanitySide("base", recorded, {_asked(a): a.opponent for a in found[1]})
    return SanitySide("base", "missing: no evaluation on this base model ran against the base model", {})
