"""Out of memory during training, handled: a smaller batch, the same examples per optimizer step, the run goes on.

On `torch.OutOfMemoryError` the per-device batch is halved (an odd one divided by its smallest factor)
and gradient accumulation multiplied by the same factor, so each optimizer step still sees the same
examples and the same gradient. The run continues from its last completed optimizer step: the error
struck inside a forward or backward pass, so that step's weights, optimizer moments, schedule and
step count are still intact in memory. They are written as the checkpoint of that step (the files a
save step writes) and a new trainer with the smaller batch resumes from it through transformers'
resume path, which also skips the examples already trained on. An error inside the optimizer step
itself (weights possibly half-updated) resumes from the newest checkpoint on disk instead, and one
before the first step simply starts over. `runs/<run_id>/config.yaml` is rewritten with the batch that
fits, so `train --resume` continues with it.

The run stops with the guide's advice instead when the batch cannot shrink: it is 1, or packing already
feeds one packed row per forward pass (a smaller per_device_train_batch_size would only move work into
accumulation, see `schedule.micro_batching`), or the run has several processes, whose ranks would have to
change together.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from milton_lora.config import TrainConfig
from milton_lora.errors import MiltonError
from milton_lora.train.checks import TrainPlan

# (rows per forward pass, forward passes per optimizer step) of a config: `schedule.micro_batching`.
Batching = Callable[[TrainConfig], tuple[int, int]]


@dataclass(frozen=True)
class OomRetry:
    """One out-of-memory error survived: where, what changed, where the run continued from."""

    step: int
    error: str
    per_device_train_batch_size: tuple[int, int]
    gradient_accumulation_steps: tuple[int, int]
    continued_from: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        (b0, b1), (a0, a1) = self.per_device_train_batch_size, self.gradient_accumulation_steps
        start = Path(self.continued_from).name if self.continued_from else "the start"
        return (f"out of memory after step {self.step}: per_device_train_batch_size {b0} -> {b1}, "
                f"gradient_accumulation_steps {a0} -> {a1} ({b1 * a1} examples per optimizer step, as before); "
                f"continued from {start}")  # fmt: skip


@dataclass
class Fitted:
    """The trainer that finished, its output, the plan it ran with (the batch that fit) and the retries."""

    trainer: Any
    output: Any
    plan: TrainPlan
    retries: list[OomRetry] = field(default_factory=list)


def smallest_factor(n: int) -> int | None:
    return next((f for f in range(2, n + 1) if n % f == 0), None)


def smaller_batch(config: TrainConfig, batching: Batching) -> TrainConfig | None:
    """The config with a smaller per-device batch and as much more accumulation, or None when that would not
    put fewer rows in a forward pass (batch 1, or packing's one row per pass)."""
    factor = smallest_factor(config.per_device_train_batch_size)
    if factor is None:
        return None
    smaller = config.model_copy(update={
        "per_device_train_batch_size": config.per_device_train_batch_size // factor,
        "gradient_accumulation_steps": config.gradient_accumulation_steps * factor,
    })  # fmt: skip
    return smaller if batching(smaller)[0] < batching(config)[0] else None


def out_of_memory_advice(plan: TrainPlan, step: int, rows_per_pass: int, processes: int) -> str:
    """The one-line error when the batch cannot shrink any further here, with what else lowers memory."""
    c = plan.config
    if processes > 1:
        where = (f"with {processes} processes (every rank must change together; set per_device_train_batch_size "
                 f"{c.per_device_train_batch_size} -> {max(c.per_device_train_batch_size // 2, 1)} and "
                 f"gradient_accumulation_steps {c.gradient_accumulation_steps} -> {c.gradient_accumulation_steps * 2} "
                 "yourself, or:")  # fmt: skip
    elif c.packing:
        where = f"with one packed row of max_seq_length {c.max_seq_length} tokens per forward pass (packing: true);"
    else:
        where = f"with per_device_train_batch_size {rows_per_pass};"
    fixes = [f"lower max_seq_length ({c.max_seq_length} -> {max(c.max_seq_length // 2, 16)})"]
    if not c.use_gradient_checkpointing:
        fixes.append("set use_gradient_checkpointing: true")
    if not c.load_in_4bit:
        fixes.append("set load_in_4bit: true (QLoRA, pip install 'milton-lora[qlora]')")
    return (f"{plan.config_path}: CUDA out of memory after step {step} {where} {', or '.join(fixes)}; then start a "
            f"new run (checkpoints so far are in {plan.run_dir / 'checkpoints'})")  # fmt: skip


class OptimizerStepTracker(TrainerCallback):
    """Whether the trainer is inside `optimizer.step()`, where an error can leave the weights half-updated."""

    def __init__(self) -> None:
        self.inside = False

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.inside = True

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.inside = False


def train_within_memory(plan: TrainPlan, start: Callable[[TrainPlan], Any], resume_from: Path | None,
                        batching: Batching, newest_checkpoint: Callable[[Path], Path | None],
                        notify: Callable[[str], None]) -> Fitted:  # fmt: skip
    """`start(plan)` builds a trainer; train it, and on out of memory go on with a smaller batch until it fits."""
    import torch

    retries: list[OomRetry] = []
    while True:
        trainer = start(plan)
        tracker = OptimizerStepTracker()
        trainer.add_callback(tracker)
        try:
            output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
            return Fitted(trainer, output, plan, retries)
        except torch.OutOfMemoryError as error:
            reason = (str(error).strip().splitlines() or ["out of memory"])[0]
        # Outside the except block the traceback, and the activations its frames held, can be freed.
        release_memory()
        step, processes = trainer.state.global_step, trainer.args.world_size
        smaller = smaller_batch(plan.config, batching)
        if smaller is None or processes > 1:
            raise MiltonError(out_of_memory_advice(plan, step, batching(plan.config)[0], processes))
        resume_from = continue_point(trainer, tracker.inside, plan.run_dir, newest_checkpoint)
        retry = OomRetry(
            step, reason,
            (plan.config.per_device_train_batch_size, smaller.per_device_train_batch_size),
            (plan.config.gradient_accumulation_steps, smaller.gradient_accumulation_steps),
            str(resume_from) if resume_from else None,
        )  # fmt: skip
        retries.append(retry)
        notify(retry.describe())
        trainer.accelerator.free_memory()
        del trainer
        release_memory()
        plan = replace(plan, config=smaller)


def continue_point(trainer: Any, inside_optimizer_step: bool, run_dir: Path,
                   newest_checkpoint: Callable[[Path], Path | None]) -> Path | None:  # fmt: skip
    """The checkpoint to continue from: the last completed step's state, written from memory when it is intact."""
    if inside_optimizer_step:
        return newest_checkpoint(run_dir)
    if trainer.state.global_step == 0:
        return None
    # The same files a save step writes (weights, optimizer, scheduler, RNG, trainer_state.json).
    trainer._save_checkpoint(trainer.model, trial=None)
    return Path(trainer.args.output_dir) / f"checkpoint-{trainer.state.global_step}"


def release_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
