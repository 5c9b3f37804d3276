"""A rich progress bar for training: steps, loss, eval loss and non-pad tokens per second."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from transformers import TrainerCallback


class RichProgressCallback(TrainerCallback):
    """Replaces transformers' tqdm bars (disabled in our args) on the main process."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.progress: Progress | None = None
        self.task: Any = None
        self.started = 0.0
        self.tokens_at_start = 0
        self.loss = "-"
        self.eval_loss = "-"

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
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
        if self.progress is not None:
            self.progress.update(self.task, stats=self._stats(state))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step, stats=self._stats(state))
            self.progress.stop()
            self.progress = None

    def _stats(self, state: Any) -> str:
        elapsed = max(time.time() - self.started, 1e-9)
        rate = (state.num_input_tokens_seen - self.tokens_at_start) / elapsed
        return f"loss {self.loss}  eval {self.eval_loss}  {rate:,.0f} tok/s"
