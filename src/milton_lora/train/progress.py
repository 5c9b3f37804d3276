"""A rich progress bar for training: steps, loss, eval loss, non-pad tokens per second and the run's health;
and `EvaluationClock`, the time `trainer.train()` spent evaluating, so the training throughput written to the
adapter's metadata.json counts training alone.

Each health signal (`milton_lora.train.health`) is also printed as a warning line above the bar when it appears.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text
from transformers import TrainerCallback

from milton_lora.train.health import HealthMonitor


class RichProgressCallback(TrainerCallback):
    """Replaces transformers' tqdm bars (disabled in our args) on the main process."""

    def __init__(self, console: Console | None = None, health: HealthMonitor | None = None):
        self.console = console or Console(stderr=True)
        self.health = health
        self.announced: set[tuple[str, int]] = set()
        self.progress: Progress | None = None
        self.task: Any = None
        self.started = 0.0
        self.tokens_at_start = 0
        self.loss = "-"
        self.eval_loss = "-"

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.close()  # a run restarted after an out-of-memory error gets a fresh bar
        self.progress = Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task("train", total=state.max_steps, completed=state.global_step, stats="")
        self.started = time.time()
        self.tokens_at_start = state.num_input_tokens_seen

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step, stats=self._stats(state))

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        logs = logs or {}
        if "loss" in logs:
            self.loss = f"{logs['loss']:.4f}"
        if "eval_loss" in logs:
            self.eval_loss = f"{logs['eval_loss']:.4f}"
        self._announce_signals()
        if self.progress is not None:
            self.progress.update(self.task, stats=self._stats(state))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step, stats=self._stats(state))
        self.close()

    def close(self) -> None:
        """Stop the live display (also when training ended in an error), so the terminal is left as it was."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def _announce_signals(self) -> None:
        for signal in self.health.signals if self.health else []:
            if (signal.kind, signal.step) not in self.announced:
                self.announced.add((signal.kind, signal.step))
                self.console.print(Text("warning: ", "bold yellow") + f"{signal.message}: {signal.advice}")

    def _stats(self, state: Any) -> str:
        elapsed = max(time.time() - self.started, 1e-9)
        rate = (state.num_input_tokens_seen - self.tokens_at_start) / elapsed
        health = f"  health: {self.health.summary()}" if self.health else ""
        return f"loss {self.loss}  eval {self.eval_loss}  {rate:,.0f} tok/s{health}"


class EvaluationClock(TrainerCallback):
    """Seconds spent in evaluations since the latest `trainer.train()` began (its `train_runtime` includes them)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.seconds = 0.0

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None,
                    **kwargs: Any) -> None:  # fmt: skip
        self.seconds += (metrics or {}).get("eval_runtime", 0.0)
