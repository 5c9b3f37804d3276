"""The training schedule sized to the data: optimizer steps, effective batch, warmup and evaluations.

A config's `per_device_train_batch_size`, `gradient_accumulation_steps` and `num_epochs` suit a large
export; on a month of a person's history (150 conversations pack into about 6 rows of 2,048 tokens) a
batch of 4 x 4 rows is larger than the whole dataset and three epochs make 3 optimizer steps. So the
schedule is resolved against the tokenized data before training:

1. Rows per optimizer step (batch x accumulation; with packing, packed rows) are lowered until the run
   makes at least `min_steps` optimizer steps, down to one row per step; accumulation goes first, then
   the per-device batch (which also lowers memory, never raises it).
2. If one row per step still makes fewer than `min_steps`, the epochs are raised (whole epochs, so every
   conversation is seen as often as every other), at most to MAX_EPOCHS: a tiny export is then short,
   and the plan says so. Early stopping on the held-out loss (`early_stopping_patience`) and keeping the
   best checkpoint guard the extra epochs against learning the conversations by heart.
3. Warmup is `warmup_ratio` of the optimizer steps; evaluations are spread `evals_per_run` over the run.

Explicit values win: `max_steps > 0` fixes the length (no batch or epoch change), `warmup_steps` and
`eval_steps` set in the config are used as written, `min_steps: 0` turns steps 1-2 off. The resolved
values are written into the run's config (`runs/<run_id>/config.yaml`), so `--resume` trains the same
schedule, and the plan lists every change with its reason. Steps are counted the way transformers does
(`ceil(batches / accumulation)` per epoch, one process).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from milton_lora.config import TrainConfig

MAX_EPOCHS = 10  # raising epochs for min_steps stops here: beyond it a small export is memorised, not learned
FEW_STEPS = 20  # with min_steps off, fewer optimizer steps than this are still warned about
MAX_WARMUP_SHARE = 0.5  # an explicit warmup_steps over half the run keeps the learning rate low most of it


@dataclass(frozen=True)
class Schedule:
    """The schedule a run trains with, resolved from its config and data (printed by the plan, kept in metadata)."""

    config: TrainConfig  # with the resolved batch, accumulation, epochs, warmup_steps and eval_steps
    rows_per_epoch: int  # packed rows, or conversations without packing
    trained_tokens: int  # labelled (assistant) tokens per epoch
    input_tokens: int  # all tokens per epoch
    steps_per_epoch: int
    optimizer_steps: int
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unit: str = ""  # what a row is, when not a packed row or a conversation (a preference pair)

    @property
    def rows_per_step(self) -> int:
        return self.config.per_device_train_batch_size * self.config.gradient_accumulation_steps

    @property
    def tokens_per_step(self) -> int:
        """Input tokens in one optimizer step, on average over an epoch."""
        return round(self.input_tokens / self.steps_per_epoch) if self.steps_per_epoch else 0

    @property
    def evaluations(self) -> int:
        every = self.config.eval_steps
        return self.optimizer_steps // every if every else 0

    def rows(self) -> list[tuple[str, str]]:
        """The plan's lines about the schedule."""
        c = self.config
        unit = self.unit or ("packed rows" if c.packing else "conversations")
        length = f"{c.max_steps} steps" if c.max_steps > 0 else f"{c.num_epochs:g} epochs"
        evaluation = "none (no held-out split)"
        if c.eval_steps:
            evaluation = f"held-out loss every {c.eval_steps} steps ({self.evaluations} in the run), best kept"
        if c.eval_steps and c.early_stopping_patience:
            evaluation += f", early stop after {c.early_stopping_patience} without improvement"
        return [
            ("optimizer steps", f"{self.optimizer_steps} ({length} of {self.steps_per_epoch} steps)"),
            (
                "rows per step",
                f"{self.rows_per_step} {unit} ({c.per_device_train_batch_size} x "
                f"{c.gradient_accumulation_steps} accumulation) of {self.rows_per_epoch}",
            ),
            ("tokens per step", f"{self.tokens_per_step:,} ({self.trained_tokens:,} trained tokens per epoch)"),
            ("learning rate", f"peak {c.learning_rate:g}, {c.lr_scheduler_type}, warmup {c.warmup_steps} steps"),
            ("evaluation", evaluation),
            *(("schedule change", change) for change in self.changes),
        ]

    def record(self) -> dict[str, Any]:
        """What `metadata.json` keeps under `schedule`."""
        return {
            "optimizer_steps": self.optimizer_steps,
            "steps_per_epoch": self.steps_per_epoch,
            "rows_per_epoch": self.rows_per_epoch,
            "rows_per_step": self.rows_per_step,
            "tokens_per_step": self.tokens_per_step,
            "peak_learning_rate": self.config.learning_rate,
            "warmup_steps": self.config.warmup_steps,
            "eval_steps": self.config.eval_steps,
            "changes": self.changes,
        }


def steps_per_epoch(rows: int, config: TrainConfig) -> int:
    """Optimizer steps in one epoch, as transformers counts them (the last step may take fewer batches)."""
    micro, accumulation = micro_batching(config)
    batches = math.ceil(rows / micro)
    return max(1, math.ceil(batches / accumulation))


def micro_batching(config: TrainConfig) -> tuple[int, int]:
    """(rows per forward pass, forward passes per optimizer step).

    Packed rows are fed one per forward pass and the batch size becomes accumulation: the same
    tokens per optimizer step and the same gradient (tests check accumulation against one batch),
    but attention runs over one row of max_seq_length tokens instead of the whole flattened batch,
    which SDPA's per-document mask would otherwise compute densely (1.5x faster measured on CPU).
    """
    if config.packing:
        return 1, config.per_device_train_batch_size * config.gradient_accumulation_steps
    return config.per_device_train_batch_size, config.gradient_accumulation_steps


def resolve_schedule(config: TrainConfig, rows: int, input_tokens: int, trained_tokens: int, has_eval: bool,
                     unit: str = "", min_batch: int = 1) -> Schedule:  # fmt: skip
    """The schedule for `rows` rows per epoch (packed rows, or conversations without packing, or the `unit`
    named); the per-device batch is never lowered below `min_batch` (KTO compares the rows of one batch)."""
    changes: list[str] = []
    warnings: list[str] = []
    if config.max_steps <= 0 and config.min_steps > 0:
        config = _enough_steps(config, rows, changes, min_batch)
    per_epoch = steps_per_epoch(rows, config)
    total = config.max_steps if config.max_steps > 0 else math.ceil(config.num_epochs * per_epoch)
    warmup = config.warmup_steps if config.warmup_steps is not None else round(config.warmup_ratio * total)
    every = (config.eval_steps or max(1, math.ceil(total / config.evals_per_run))) if has_eval else 0
    config = config.model_copy(update={"warmup_steps": warmup, "eval_steps": every})
    floor = config.min_steps or FEW_STEPS
    if total < floor:
        warnings.append(
            f"only {total} optimizer steps ({rows} rows per epoch): too few to learn from; "
            + ("export more days" if config.max_steps <= 0 else f"raise max_steps ({config.max_steps} -> {floor})")
        )
    if warmup > MAX_WARMUP_SHARE * total:
        warnings.append(f"warmup_steps {warmup} is over half of the {total} optimizer steps: the learning rate stays "
                        f"low most of the run; use warmup_ratio instead")  # fmt: skip
    if config.save_steps and every and config.save_steps % every:
        warnings.append(f"save_steps {config.save_steps} is not a multiple of eval_steps {every}: checkpoints are "
                        f"saved at each evaluation instead, so the best one can be kept")  # fmt: skip
    return Schedule(config, rows, trained_tokens, input_tokens, per_epoch, total, changes, warnings, unit)


def _enough_steps(config: TrainConfig, rows: int, changes: list[str], min_batch: int) -> TrainConfig:
    """Fewer rows per step, then more epochs, until the run makes `min_steps` optimizer steps."""
    target, original = config.min_steps, config

    def total(candidate: TrainConfig) -> int:
        return math.ceil(candidate.num_epochs * steps_per_epoch(rows, candidate))

    while total(config) < target and config.gradient_accumulation_steps > 1:
        config = config.model_copy(update={"gradient_accumulation_steps": config.gradient_accumulation_steps - 1})
    while total(config) < target and config.per_device_train_batch_size > min_batch:
        config = config.model_copy(update={"per_device_train_batch_size": config.per_device_train_batch_size - 1})
    if _batch(config) != _batch(original):
        changes.append(f"batch {_batch(original)} -> {_batch(config)} for at least {target} steps (min_steps)")
    epochs = config.num_epochs
    while total(config.model_copy(update={"num_epochs": epochs})) < target and epochs < MAX_EPOCHS:
        epochs = min(MAX_EPOCHS, math.floor(epochs) + 1)
    if epochs != config.num_epochs:
        changes.append(f"num_epochs {config.num_epochs:g} -> {epochs:g} for at least {target} steps (min_steps)")
        config = config.model_copy(update={"num_epochs": epochs})
    return config


def _batch(config: TrainConfig) -> str:
    return f"{config.per_device_train_batch_size} x {config.gradient_accumulation_steps}"
