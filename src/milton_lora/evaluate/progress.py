"""The phases of an evaluation: each one timed (wall clock, and CPU time of this process for
`bench/eval_phases.py`), and shown as a rich progress bar with an ETA when a console is given (the CLI
passes none under `--json` or without a terminal).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class Phases:
    """`with Phases(console) as phases:` then `with phases.phase("sanity", "sanity prompts", 10) as advance:`."""

    def __init__(self, console: Console | None = None):
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        self._started = time.perf_counter()
        self._progress = (
            Progress(
                TextColumn("{task.description:<22}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
            )
            if console is not None
            else None
        )

    def __enter__(self) -> Phases:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    @contextmanager
    def phase(self, key: str, label: str, total: float) -> Iterator[Callable[[float], None]]:
        """Time the phase under `key`; the yielded function advances its bar by a number of steps done."""
        started, cpu_started = time.perf_counter(), time.process_time()
        task = self._progress.add_task(label, total=total) if self._progress is not None else None

        def advance(steps: float) -> None:
            if self._progress is not None and task is not None:
                self._progress.advance(task, steps)

        yield advance
        if self._progress is not None and task is not None:
            self._progress.update(task, completed=total)
        self.seconds[key] = round(self.seconds.get(key, 0.0) + time.perf_counter() - started, 2)
        self.cpu_seconds[key] = round(self.cpu_seconds.get(key, 0.0) + time.process_time() - cpu_started, 2)

    def timings(self) -> dict[str, float]:
        """Seconds per phase and in total (since these phases began)."""
        return {**self.seconds, "total": round(time.perf_counter() - self._started, 2)}
