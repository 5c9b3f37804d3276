"""`milton-lora cycle`: the weekly loop as one command: export → train → evaluate → the promotion decision.

Decisions:
- One cycle at a time per home: a file lock (`runs/cycles/cycle.lock`, taken without waiting); a second
  cycle is refused at once, naming the process that holds it and since when (`cycle.holder.json`),
  with exit status 75 (EX_TEMPFAIL: try again later), so a scheduler can tell it from a failure.
- Each stage calls the same public function as its own command (`export`, `train`, `eval`), so the
  cycle behaves exactly like the documented commands typed one after another.
- Every cycle leaves `runs/cycles/<cycle_id>.json` (rewritten atomically after every stage): each
  stage's status, start, seconds and what it produced, the decision, the promotion outcome, the error.
- A failed stage ends the cycle: `cycle failed at <stage>: <reason>`, exit status 1, the log kept.
- Only evaluation moves an adapter to `candidate`; production needs a person's yes (or
  `--promote-if-candidate`, the person's yes given in advance). What asking looks like is the caller's
  (`CycleUI`); without a way to ask, nothing is promoted and the log says how to promote.
- After SFT, a preference stage (`--preference-config`, default `lora_dpo.yaml`) trains DPO/KTO continuing the
  adapter just trained, when the export (the cycle's window: the new signals) holds the preference config's
  `min_train_preferences`; else it is logged as skipped with the counts. The adapter evaluated is the last one
  trained.
- `--from-production` with a tainted production (it learned a forgotten conversation) trains from new
  weights instead: the retrain without the forgotten data that `memory forget` points to.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from filelock import FileLock, Timeout
from pydantic import BaseModel, Field

from milton_lora import __version__
from milton_lora.errors import MiltonError
from milton_lora.evaluate.options import EvalOptions
from milton_lora.fileio import atomic_write_json, atomic_write_text
from milton_lora.settings import Settings

if TYPE_CHECKING:  # the stages load the ML libraries; they are imported where the cycle runs them
    from rich.console import Console

    from milton_lora.evaluate.result import EvalResult
    from milton_lora.export import ExportOptions, ExportSummary
    from milton_lora.redact import Redactor
    from milton_lora.train.checks import TrainPlan
    from milton_lora.train.runner import TrainResult

StageName = Literal["export", "train", "preferences", "evaluate", "promote"]
StageStatus = Literal["running", "ok", "failed", "skipped"]
CycleStatus = Literal["running", "completed", "failed"]
Result = TypeVar("Result")
LOCKED_EXIT = 75  # EX_TEMPFAIL: another cycle runs; try again later


class CycleLocked(MiltonError):
    exit_code = LOCKED_EXIT


@dataclass(frozen=True)
class CycleRequest:
    """What the person asked for (the `cycle` flags)."""

    days: int | None = 7
    config: Path = Path("lora_default.yaml")
    from_production: bool = False
    promote_if_candidate: bool = False
    evaluation: EvalOptions = field(default_factory=EvalOptions)
    export_options: ExportOptions | None = None
    preference_config: Path | None = Path("lora_dpo.yaml")  # None: no preference stage (--no-preferences)

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": self.days, "config": str(self.config), "from_production": self.from_production,
            "preference_config": str(self.preference_config) if self.preference_config else None,
            "promote_if_candidate": self.promote_if_candidate, **self.evaluation.as_dict(),
            **(asdict(self.export_options) if self.export_options else {}),
        }  # fmt: skip


class StageRecord(BaseModel):
    name: StageName
    status: StageStatus = "running"
    started_at: str
    seconds: float | None = None
    summary: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


class Decision(BaseModel):
    """The gate's verdict after evaluation."""

    status: str  # the registry status after evaluation: candidate, or training when held
    gate_passed: bool
    criteria: list[dict[str, Any]]
    held: list[str]  # the failed criteria, `name value (needs required)`


class Promotion(BaseModel):
    promoted: bool
    outcome: str  # what happened, in words (promoted, declined, not asked and why)


class CycleLog(BaseModel):
    """`runs/cycles/<cycle_id>.json`."""

    cycle_id: str
    status: CycleStatus = "running"
    started_at: str
    finished_at: str | None = None
    seconds: float | None = None
    pid: int
    tool_version: str = __version__
    request: dict[str, Any]
    stages: list[StageRecord] = Field(default_factory=list)
    run_id: str | None = None
    decision: Decision | None = None
    promotion: Promotion | None = None
    failed_stage: StageName | None = None
    error: str | None = None
    traceback: str | None = None  # only for an unexpected error (a bug), never for a user mistake


class CycleUI(Protocol):
    """What the caller shows and asks along the way (the CLI prints tables and asks on the terminal)."""

    def stage_started(self, name: StageName) -> None: ...

    def exported(self, summary: ExportSummary) -> None: ...

    def training_planned(self, plan: TrainPlan) -> None: ...

    def trained(self, result: TrainResult) -> None: ...

    def evaluated(self, result: EvalResult, run_dir: Path) -> None: ...

    def eval_console(self) -> Console | None:
        """Where the evaluation draws its progress bars (None: no bars)."""
        ...

    def promote(self, run_id: str, asked_in_advance: bool) -> Promotion:
        """Ask (unless `asked_in_advance`) and promote `run_id` to production; say what happened."""
        ...


def run_cycle(settings: Settings, request: CycleRequest, ui: CycleUI, redactor: Redactor) -> CycleLog:
    """The whole week under the cycle lock; the log is written after every stage. Raises MiltonError
    naming the failed stage (the log is already written then)."""
    with cycle_lock(settings):
        mark_killed(settings)
        log = CycleLog(cycle_id=new_cycle_id(settings.cycles_dir, datetime.now()), started_at=now_iso(),
                       pid=os.getpid(), request=request.as_dict())  # fmt: skip
        started = time.time()
        try:
            run_stages(settings, request, ui, log, redactor)
            log.status = "completed"
        finally:
            log.finished_at, log.seconds = now_iso(), round(time.time() - started, 2)
            if log.status == "running":  # a stage failed, or the cycle was interrupted (Ctrl-C, a signal)
                log.status, log.error = "failed", log.error or "interrupted"
            write_log(settings, log)
        return log


def run_stages(settings: Settings, request: CycleRequest, ui: CycleUI, log: CycleLog, redactor: Redactor) -> None:
    """Export (with the home's `redact.yaml` in `redactor`), train, train on preferences (when there are enough),
    evaluate, decide; each logged as a stage."""
    from milton_lora.evaluate.plan import EvalRequest
    from milton_lora.evaluate.runner import evaluate_run
    from milton_lora.export import export_training_data
    from milton_lora.train.checks import base_model_of
    from milton_lora.train.launch import plan_training, preference_stage, production_is_tainted, train_and_register

    def export() -> ExportSummary:
        options = request.export_options

        def exported() -> ExportSummary:
            return export_training_data(settings.memory_db, settings.export_dir, request.days, redactor=redactor,
                                        options=options)  # fmt: skip

        if options is None or not options.restate_facts:
            return exported()
        from milton_lora.restate import export_then_restate

        # The base the cycle's training config names restates the facts.
        return export_then_restate(exported, base_model_of(settings, request.config), options.restate_max_facts)

    summary = stage(settings, log, ui, "export", export,
                    lambda s: {"train_conversations": s.train_conversations, "test_conversations": s.test_conversations,
                               "window_days": s.window_days, "files": s.files,
                               **({"restated": s.restated} if s.restated else {})})  # fmt: skip
    ui.exported(summary)

    def launch(plan: TrainPlan) -> TrainResult:
        log.run_id = plan.run_id
        write_log(settings, log)
        ui.training_planned(plan)
        return train_and_register(settings, plan, resume=False)

    def train() -> TrainResult:
        # A tainted production learned what was forgotten: the cycle retrains from new weights instead.
        from_production = request.from_production and not production_is_tainted(settings)
        plan = plan_training(settings, request.config, None, from_production)
        check_trains_on_export(settings, plan.train_file)
        return launch(plan)

    trained = stage(settings, log, ui, "train", train, training_summary)
    ui.trained(trained)
    preference_config, why = preference_stage(settings, request.preference_config)
    if preference_config is None:
        skip(log, "preferences", why)
    else:

        def prefer(sft_run_id: str = trained.run_id) -> TrainResult:
            return launch(plan_training(settings, preference_config, None, init_from=sft_run_id))

        trained = stage(settings, log, ui, "preferences", prefer, training_summary)
        ui.trained(trained)
    eval_request = EvalRequest(run_id=trained.run_id, auto_promote=True, **request.evaluation.options())
    result = stage(settings, log, ui, "evaluate", lambda: evaluate_run(settings, eval_request, ui.eval_console()),
                   evaluation_summary)  # fmt: skip
    log.decision = decision_of(result)
    ui.evaluated(result, trained.run_dir)
    if result.status != "candidate":
        log.promotion = Promotion(promoted=False, outcome="not a candidate: " + "; ".join(log.decision.held))
        skip(log, "promote")
        return
    log.promotion = stage(settings, log, ui, "promote",
                          lambda: ui.promote(trained.run_id, request.promote_if_candidate),
                          lambda p: p.model_dump())  # fmt: skip


@dataclass
class CyclePlan:
    """`cycle --dry-run`: what each stage would do, planned by the functions `export --dry-run` and
    `train --dry-run` use. Nothing is exported, trained, evaluated, promoted or logged, and the cycle lock
    is not taken; the general replay the training plan generates is kept for the run that follows
    (`train/general_replay.py`)."""

    export: ExportSummary
    training: TrainPlan | None
    training_problem: str | None  # why training cannot be planned now (no export on disk yet, a check failed)
    evaluation: list[tuple[str, str]]
    preferences: str = ""  # whether the preference stage would run, on the export on disk


def plan_cycle(settings: Settings, request: CycleRequest, redactor: Redactor) -> CyclePlan:
    """The export's counts for the window (nothing written), the training plan with its safety checks, and how
    the new adapter would be evaluated and promoted. Training is planned on the export as it is on disk now;
    when the cycle's own export would differ, the plan says so."""
    from milton_lora.export import export_training_data
    from milton_lora.train.launch import plan_training, preference_stage

    export = export_training_data(settings.memory_db, settings.export_dir, request.days, dry_run=True,
                                  redactor=redactor, options=request.export_options)  # fmt: skip
    training, problem = None, None
    try:
        training = plan_training(settings, request.config, None, request.from_production, claim=False)
        check_trains_on_export(settings, training.train_file)
    except MiltonError as exc:
        training, problem = None, str(exc)
    if training is not None and training.train_conversations != export.train_conversations:
        training.warnings.append(
            f"planned on the export on disk ({training.train_conversations} training conversations); the cycle "
            f"exports first, {export.train_conversations} training conversations"
        )
    promotion = ("promoted without asking when the gate passes (--promote-if-candidate)" if request.promote_if_candidate
                 else "asked for when the gate passes; held adapters stay at training")  # fmt: skip
    evaluation = [("opponent", "the production adapter when there is one on the same base, else the base model"),
                  *((name, str(value)) for name, value in request.evaluation.as_dict().items() if value is not None),
                  ("promotion", promotion)]  # fmt: skip
    try:
        preferences = preference_stage(settings, request.preference_config)[1]
    except MiltonError as exc:
        preferences = f"cannot be planned: {exc}"
    return CyclePlan(export, training, problem, evaluation, f"{preferences} (on the export on disk)")


def stage(settings: Settings, log: CycleLog, ui: CycleUI, name: StageName, work: Callable[[], Result],
          summarize: Callable[[Result], dict[str, Any]]) -> Result:  # fmt: skip
    """Run one stage, recording it in the log; a failure becomes `cycle failed at <stage>: <reason>`."""
    record = StageRecord(name=name, started_at=now_iso())
    log.stages.append(record)
    write_log(settings, log)
    ui.stage_started(name)
    started = time.time()
    try:
        result = work()
    except MiltonError as exc:
        fail(log, record, str(exc))
        raise MiltonError(failure_message(settings, log)) from None
    except Exception as exc:  # a bug, not a user mistake: keep the traceback in the log
        fail(log, record, f"{type(exc).__name__}: {exc}")
        log.traceback = traceback.format_exc()
        raise MiltonError(failure_message(settings, log)) from exc
    finally:
        record.seconds = round(time.time() - started, 2)
    record.status, record.summary = "ok", summarize(result)
    write_log(settings, log)
    return result


def fail(log: CycleLog, record: StageRecord, reason: str) -> None:
    record.status, record.error = "failed", reason
    log.failed_stage, log.error = record.name, reason


def failure_message(settings: Settings, log: CycleLog) -> str:
    return f"cycle failed at {log.failed_stage}: {log.error} (log: {log_path(settings, log.cycle_id)})"


def skip(log: CycleLog, name: StageName, reason: str | None = None) -> None:
    summary = {"reason": reason} if reason else {}
    log.stages.append(StageRecord(name=name, status="skipped", started_at=now_iso(), seconds=0.0, summary=summary))


def check_trains_on_export(settings: Settings, train_file: Path) -> None:
    """The config must train on what this cycle just exported, not on a file elsewhere."""
    exported = settings.export_train_path
    if train_file.resolve() != exported.resolve():
        raise MiltonError(
            f"the config's train_file is {train_file}, but the cycle exports to {exported}; "
            "remove train_file/test_file from the config or set them to the export's files"
        )


def training_summary(result: TrainResult) -> dict[str, Any]:
    record = result.record
    results = record.results
    summary = {"run_id": result.run_id, "method": record.method, "adapter": str(result.adapter_dir),
               "run_dir": str(result.run_dir),
               "global_steps": results.global_steps, "final_train_loss": results.final_train_loss,
               "final_eval_loss": results.final_eval_loss, "health": record.health_status}  # fmt: skip
    for key in ("init_from", "replay"):
        if getattr(record, key) is not None:
            summary[key] = getattr(record, key).model_dump()
    return summary


def evaluation_summary(result: EvalResult) -> dict[str, Any]:
    h = result.head_to_head
    return {
        "status": result.status,
        "opponent": result.opponent.label,
        "pass_rate": result.benchmarks.adapter.pass_rate,
        "opponent_pass_rate": result.benchmarks.opponent.pass_rate,
        "eval_loss": result.adapter.eval_loss,
        "perplexity": result.adapter.perplexity,
        "token_accuracy": result.adapter.token_accuracy,
        "regressions": result.benchmarks.regressions,
        "win_rate": h.win_rate if h else None,
    }


def decision_of(result: EvalResult) -> Decision:
    gate = result.gate
    return Decision(
        status=result.status,
        gate_passed=gate.passed,
        criteria=[c.model_dump() for c in gate.criteria],
        held=[f"{c.name} {c.value} (needs {c.required})" for c in gate.failed()],
    )


# --- the lock and the log ----------------------------------------------------------------------


@contextmanager
def cycle_lock(settings: Settings) -> Iterator[None]:
    """Hold the home's cycle lock for the block, or refuse at once naming who holds it."""
    settings.cycles_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(settings.cycle_lock_path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise CycleLocked(
            f"another cycle is running ({settings.cycle_lock_path} is held{holder_of(settings)}); "
            "nothing was done; try again when it has finished"
        ) from None
    try:
        atomic_write_json(settings.cycle_holder_path, {"pid": os.getpid(), "since": now_iso()})
        yield
    finally:
        settings.cycle_holder_path.unlink(missing_ok=True)
        lock.release()


def mark_killed(settings: Settings) -> list[str]:
    """Logs still `running` while this process holds the lock belong to cycles that were killed (kill -9,
    power loss): mark them failed, with their running stage, so none says `running` forever."""
    marked = []
    for path in sorted(settings.cycles_dir.glob("cycle_*.json")):
        try:
            log = CycleLog.model_validate_json(path.read_text())
        except (OSError, ValueError):
            continue  # not a log this version wrote; left as it is
        if log.status != "running":
            continue
        log.status, log.error = "failed", f"killed: pid {log.pid} ended without finishing (found {now_iso()})"
        for record in log.stages:
            if record.status == "running":
                record.status, record.error = "failed", "killed"
                log.failed_stage = record.name
        write_log(settings, log)
        marked.append(log.cycle_id)
    return marked


def holder_of(settings: Settings) -> str:
    try:
        holder = json.loads(settings.cycle_holder_path.read_text())
        return f" by pid {holder['pid']} since {holder['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def new_cycle_id(cycles_dir: Path, now: datetime) -> str:
    """`cycle_YYYYMMDD_HHMMSS`, one second later while that log exists."""
    while (cycles_dir / f"cycle_{now:%Y%m%d_%H%M%S}.json").exists():
        now += timedelta(seconds=1)
    return f"cycle_{now:%Y%m%d_%H%M%S}"


def log_path(settings: Settings, cycle_id: str) -> Path:
    return settings.cycles_dir / f"{cycle_id}.json"


def write_log(settings: Settings, log: CycleLog) -> None:
    atomic_write_text(log_path(settings, log.cycle_id), log.model_dump_json(indent=2) + "\n")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
