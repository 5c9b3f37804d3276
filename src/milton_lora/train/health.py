"""Training health, watched while a run trains: what the workflow guide tells people to look for, checked for them.

`HealthMonitor` reads the trainer's log entries one by one (train loss, gradient norm, eval loss, epoch)
and raises signals, each with the step and the config keys that address it:

- non-finite: a loss or gradient norm that is nan or inf. `HealthCallback` stops the run at once (no
  further step, evaluation or checkpoint); the runner then writes `runs/<run_id>/health.json`, no adapter,
  and ends with a MiltonError naming the step, the last good checkpoint and the advice.
- spike: one logged loss more than SPIKE_FACTOR times the median of the previous SPIKE_WINDOW (and at
  least MIN_RISE above it).
- divergence: the median of the last DIVERGENCE_WINDOW losses DIVERGENCE_FACTOR times its best (and at
  least MIN_RISE above it), i.e. the loss went up and stayed up.
- overfitting: eval loss rising at OVERFIT_EVALS evaluations in a row, at least OVERFIT_MIN_RISE above its
  best, while the train loss fell; the signal's step is the best evaluation, where overfitting started.
  Only with `early_stopping_patience: 0`: otherwise the run stops there by itself and its best checkpoint
  is the adapter (`train/outcome.py`), which is the cure, not a finding.
- plateau: the train loss fell by less than PLATEAU_MIN_DROP over the first epoch.
- worse than base: at the end, the held-out loss of the checkpoint written as the adapter (the best one,
  `train/outcome.py`) is above the base model's own on the same split: the adapter makes the model worse
  at the person's unseen conversations, whatever its train loss says.

Only a non-finite value stops a run; the others are flagged in the progress line, the end summary,
the adapter's `metadata.json` (`health`) and the report's loss chart. The monitor is rebuilt from the
trainer's log history when training (re)starts, so `--resume` and out-of-memory restarts keep it whole.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from milton_lora.config import TrainConfig
from milton_lora.settings import RUN_HEALTH

NON_FINITE, SPIKE, DIVERGENCE, OVERFITTING, PLATEAU = "non_finite", "spike", "divergence", "overfitting", "plateau"
WORSE_THAN_BASE = "worse_than_base"
NAMES = {NON_FINITE: "non-finite loss", SPIKE: "spike", DIVERGENCE: "divergence", OVERFITTING: "overfitting",
         PLATEAU: "no progress", WORSE_THAN_BASE: "worse than base"}  # fmt: skip

SPIKE_WINDOW = 20  # logged losses the running median is taken over
SPIKE_MIN_HISTORY = 5  # no spike is called before this many finite losses
SPIKE_FACTOR = 2.0
DIVERGENCE_WINDOW = 5
DIVERGENCE_FACTOR = 2.0
MIN_RISE = 0.5  # nats: near zero loss a doubling is noise, not a spike
OVERFIT_EVALS = 3  # evaluations in a row, each above the one before
OVERFIT_MIN_RISE = 0.01  # the last of them at least 1% above the best eval loss
TRAIN_LEVEL_WINDOW = 5  # train losses whose median is "the train loss" at an evaluation
PLATEAU_MIN_DROP = 0.01  # less than 1% lower at the end of the first epoch than at its start
PLATEAU_MIN_LOGS = 3


@dataclass(frozen=True)
class Signal:
    """One finding: its kind, the step it points at, what was seen and what to change."""

    kind: str
    step: int
    message: str
    advice: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Point:
    step: int
    epoch: float
    value: float


class HealthMonitor:
    """The health signals of one run, from its log entries in order (`observe`); no trainer needed."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.reset()

    def reset(self) -> None:
        self.signals: list[Signal] = []
        self.losses: list[Point] = []
        self.evals: list[Point] = []
        self.best_running_median = math.inf
        self.first_epoch_checked = False

    def replay(self, history: list[dict[str, Any]]) -> None:
        """Start over from a whole log history (a resumed run's, read back from its checkpoint)."""
        self.reset()
        for entry in history:
            self.observe(entry)

    @property
    def stopped(self) -> Signal | None:
        return next((s for s in self.signals if s.kind == NON_FINITE), None)

    def observe(self, entry: dict[str, Any]) -> list[Signal]:
        """Read one log entry (`loss`/`grad_norm` or `eval_loss`, with `step` and `epoch`); return new signals."""
        if self.stopped is not None:
            return []
        step, epoch = int(entry.get("step", 0)), float(entry.get("epoch") or 0.0)
        found: list[Signal | None] = []
        if "loss" in entry:
            found.append(self._non_finite(step, {k: entry.get(k) for k in ("loss", "grad_norm")}))
            if not found[-1]:
                found += self._train_loss(Point(step, epoch, float(entry["loss"])))
        if "eval_loss" in entry:
            found.append(self._non_finite(step, {"eval_loss": entry["eval_loss"]}))
            if not found[-1]:
                found.append(self._eval_loss(Point(step, epoch, float(entry["eval_loss"]))))
        new = [signal for signal in found if signal is not None]
        self.signals += new
        return new

    def record(self, last_good_checkpoint: Path | None = None) -> dict[str, Any]:
        """What `metadata.json` (`health`) and `runs/<run_id>/health.json` hold."""
        status = "stopped" if self.stopped else "warnings" if self.signals else "ok"
        record: dict[str, Any] = {"status": status, "signals": [s.as_dict() for s in self.signals]}
        if self.stopped:
            record["last_good_checkpoint"] = str(last_good_checkpoint) if last_good_checkpoint else None
        return record

    def summary(self) -> str:
        """`ok`, or the signals counted by kind (`2 spikes, overfitting`), for the progress line."""
        counts = Counter(signal.kind for signal in self.signals)
        return ", ".join(f"{n} {NAMES[kind]}s" if n > 1 else NAMES[kind] for kind, n in counts.items()) or "ok"

    def compare_with_base(self, adapter_loss: float | None, base_loss: float | None, step: int | None) -> None:
        """The end-of-run check: the adapter's held-out loss against the base model's (both measured by the run)."""
        if adapter_loss is None or base_loss is None or adapter_loss <= base_loss:
            return
        c = self.config
        where = f"step {step}'s checkpoint, the best" if step is not None else "the final weights"
        self.signals.append(Signal(
            WORSE_THAN_BASE, step or self.last_finite_step(),
            f"held-out loss {adapter_loss:.4f} ({where}) is above the base model's {base_loss:.4f}: the adapter "
            "does worse than no adapter on conversations it did not see",
            f"lower learning_rate ({c.learning_rate:g} -> {c.learning_rate / 2:g}) or lora_r ({c.lora_r} -> "
            f"{max(c.lora_r // 2, 1)}); more data helps too (export --days)",
        ))  # fmt: skip

    def last_finite_step(self) -> int:
        return self.losses[-1].step if self.losses else 0

    # --- the checks ------------------------------------------------------------------------------

    def _non_finite(self, step: int, values: dict[str, Any]) -> Signal | None:
        bad = {name: value for name, value in values.items() if value is not None and not math.isfinite(value)}
        if not bad:
            return None
        what = ", ".join(f"{name} {value}" for name, value in bad.items())
        c = self.config
        return Signal(
            NON_FINITE, step, f"{what} at step {step}",
            f"the run diverged: lower learning_rate ({c.learning_rate:g} -> {c.learning_rate / 10:g}), "
            f"raise warmup_steps ({more_warmup(c)}), keep max_grad_norm "
            f"({c.max_grad_norm:g}) and start a new run",
        )  # fmt: skip

    def _train_loss(self, point: Point) -> list[Signal | None]:
        previous = [p.value for p in self.losses[-SPIKE_WINDOW:]]
        self.losses.append(point)
        return [self._spike(point, previous), self._divergence(point), self._plateau(point)]

    def _spike(self, point: Point, previous: list[float]) -> Signal | None:
        if len(previous) < SPIKE_MIN_HISTORY:
            return None
        median = statistics.median(previous)
        if not far_above(point.value, median, SPIKE_FACTOR):
            return None
        return Signal(
            SPIKE, point.step,
            f"loss spike at step {point.step}: {point.value:.4f}, {point.value / median:.1f}x the running median "
            f"{median:.4f}",
            "one odd batch is harmless; if spikes repeat, lower learning_rate "
            f"({self.config.learning_rate:g} -> {self.config.learning_rate / 2:g}) or max_grad_norm "
            f"({self.config.max_grad_norm:g} -> {self.config.max_grad_norm / 2:g})",
        )  # fmt: skip

    def _divergence(self, point: Point) -> Signal | None:
        if len(self.losses) < DIVERGENCE_WINDOW:
            return None
        running = statistics.median(p.value for p in self.losses[-DIVERGENCE_WINDOW:])
        best = self.best_running_median
        self.best_running_median = min(best, running)
        if any(s.kind == DIVERGENCE for s in self.signals) or not far_above(running, best, DIVERGENCE_FACTOR):
            return None
        c = self.config
        return Signal(
            DIVERGENCE, point.step,
            f"loss diverging at step {point.step}: running median {running:.4f}, {running / best:.1f}x its best "
            f"{best:.4f}",
            f"lower learning_rate ({c.learning_rate:g} -> {c.learning_rate / 4:g}) and raise warmup_steps "
            f"({more_warmup(c)}); check TensorBoard for the spikes before it",
        )  # fmt: skip

    def _plateau(self, point: Point) -> Signal | None:
        if self.first_epoch_checked or point.epoch < 1.0 - 1e-9:
            return None
        self.first_epoch_checked = True
        first_epoch = [p.value for p in self.losses if p.epoch <= 1.0 + 1e-9]
        if len(first_epoch) < PLATEAU_MIN_LOGS:
            return None
        k = max(1, len(first_epoch) // 4)
        start, end = statistics.fmean(first_epoch[:k]), statistics.fmean(first_epoch[-k:])
        if end < start * (1 - PLATEAU_MIN_DROP):
            return None
        c = self.config
        return Signal(
            PLATEAU, point.step,
            f"loss has not moved in the first epoch: {start:.4f} -> {end:.4f} ({(end - start) / start:+.1%})",
            f"raise learning_rate ({c.learning_rate:g} -> {c.learning_rate * 2:g}); check that warmup_steps "
            f"({c.warmup_steps}) is a small part of the run and that the export has assistant turns to learn "
            "(metadata.json data.train_labelled_tokens)",
        )  # fmt: skip

    def _eval_loss(self, point: Point) -> Signal | None:
        if self.evals and self.evals[-1].step == point.step:
            return None  # the final evaluation repeats the last scheduled one
        self.evals.append(point)
        if self.config.early_stopping_patience or len(self.evals) < OVERFIT_EVALS:
            return None
        if any(s.kind == OVERFITTING for s in self.signals):
            return None
        recent = self.evals[-OVERFIT_EVALS:]
        best = min(self.evals, key=lambda p: p.value)
        rising = all(a.value < b.value for a, b in pairwise(recent))
        if not rising or point.value < best.value * (1 + OVERFIT_MIN_RISE):
            return None
        if self._train_level(point.step) >= self._train_level(recent[0].step):
            return None
        return Signal(
            OVERFITTING, best.step,
            f"overfitting from step {best.step}: eval loss rose {OVERFIT_EVALS - 1} evaluations in a row "
            f"({best.value:.4f} at step {best.step} -> {point.value:.4f} at step {point.step}) while train loss fell",
            self._overfitting_advice(best),
        )  # fmt: skip

    def _train_level(self, step: int) -> float:
        values = [p.value for p in self.losses if p.step <= step][-TRAIN_LEVEL_WINDOW:]
        return statistics.median(values) if values else math.inf

    def _overfitting_advice(self, best: Point) -> str:
        c = self.config
        if c.max_steps > 0:
            shorter = f"max_steps: {c.max_steps} -> {max(best.step, 1)}"
        else:
            shorter = f"num_epochs: {c.num_epochs:g} -> {max(round(best.epoch, 1), 0.1):g}"
        return (
            f"set early_stopping_patience (0 -> 3) to stop there and keep the best checkpoint; or train less "
            f"({shorter}, where eval loss was best), or lower lora_r ({c.lora_r} -> "
            f"{max(c.lora_r // 2, 1)}) or learning_rate ({c.learning_rate:g} -> {c.learning_rate / 2:g}); more "
            "data helps too (export --days)"
        )


def more_warmup(config: TrainConfig) -> str:
    warmup = config.warmup_steps or 0
    return f"{warmup} -> {max(2 * warmup, 10)}"


def far_above(value: float, reference: float, factor: float) -> bool:
    return value > factor * reference and value - reference >= MIN_RISE


def last_good_checkpoint(checkpoints_dir: Path, last_finite_step: int) -> Path | None:
    """The newest checkpoint whose weights went on to give a finite loss.

    The loss logged at step s is computed with the weights after step s-1, so checkpoint-k is good
    when k < the last step whose logged loss was finite.
    """
    names = [p.name.removeprefix("checkpoint-") for p in checkpoints_dir.glob("checkpoint-*")]
    steps = [int(name) for name in names if name.isdigit()]
    good = [step for step in steps if step < last_finite_step]
    return checkpoints_dir / f"checkpoint-{max(good)}" if good else None


class HealthCallback(TrainerCallback):
    """Feeds the monitor every log entry; on a non-finite value stops the run before anything more is done.

    Runs on every process of a distributed run (the logged loss is the mean over processes), so all
    ranks stop at the same step.
    """

    def __init__(self, config: TrainConfig):
        self.monitor = HealthMonitor(config)
        self.checkpoints_dir: Path | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.checkpoints_dir = Path(args.output_dir)
        self.monitor.replay(state.log_history)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if state.log_history:
            self.monitor.observe(state.log_history[-1])
        if self.monitor.stopped:
            self._stop(control)

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.monitor.stopped:
            self._stop(control)  # the epoch's end would otherwise evaluate and save the broken weights

    @staticmethod
    def _stop(control: Any) -> None:
        control.should_training_stop = True
        control.should_save = False
        control.should_evaluate = False

    def last_good_checkpoint(self) -> Path | None:
        if self.checkpoints_dir is None:
            return None
        return last_good_checkpoint(self.checkpoints_dir, self.monitor.last_finite_step())

    def stop_message(self, run_dir: Path) -> str:
        """The one-line error a stopped run ends with."""
        signal = self.monitor.stopped
        assert signal is not None
        checkpoint = self.last_good_checkpoint()
        kept = f"last good checkpoint {checkpoint}" if checkpoint else "no good checkpoint (none was saved before it)"
        return (
            f"{run_dir}: training stopped: {signal.message}; {kept}; no adapter was written "
            f"(health record: {run_dir / RUN_HEALTH}). Advice: {signal.advice}; the curve: `milton-lora report "
            f"{run_dir.name}`"
        )
