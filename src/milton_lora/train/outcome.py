"""What a run ended with: the checkpoint that became the adapter, why training ended, and the base model's
held-out loss beside the adapter's.

With a held-out split the run evaluates its loss on it `evals_per_run` times (`train/schedule.py`), saves a
checkpoint at each evaluation, stops early after `early_stopping_patience` evaluations without a lower
loss (transformers' `EarlyStoppingCallback`), and loads the best checkpoint at the end
(`load_best_model_at_end`): the adapter written is the one with the lowest held-out loss, not the last.
The base model's held-out loss is measured once per run, before training, on the same split with the
adapter disabled (one forward pass over the split), so the adapter can be judged against it: an adapter
whose held-out loss is above its base model's is a health warning (`train/health.py`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

COMPLETED, EARLY_STOPPED = "completed", "early_stopping"


@dataclass(frozen=True)
class Outcome:
    """`metadata.json` `results`: which step became the adapter and why training ended there."""

    best_step: int | None  # the step whose checkpoint is the adapter (None: the last step, no held-out split)
    best_eval_loss: float | None
    base_eval_loss: float | None
    stop_reason: str  # COMPLETED or EARLY_STOPPED
    stop_message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def base_model_loss(trainer: Any, prefix: str) -> float:
    """The held-out loss of the base model alone: the trainer's evaluation with the LoRA layers disabled."""
    with trainer.model.disable_adapter():
        metrics = trainer.evaluate(metric_key_prefix=prefix)
    return float(metrics[f"{prefix}_loss"])


def outcome_of(history: list[dict[str, Any]], global_step: int, planned_steps: int, best_step: int | None,
               patience: int, base_eval_loss: float | None) -> Outcome:  # fmt: skip
    """The outcome from the trainer's state: its log history, steps done and planned, the best checkpoint's step."""
    evals = {int(log["step"]): float(log["eval_loss"]) for log in history if "eval_loss" in log}
    best = best_step if best_step in evals else None
    if global_step < planned_steps and patience:
        reason = EARLY_STOPPED
        message = (f"early stopping at step {global_step} of {planned_steps}: no lower held-out loss in {patience} "
                   f"evaluations after step {best}")  # fmt: skip
    else:
        reason = COMPLETED
        message = f"all {global_step} planned steps done"
    if best is not None:
        message += f"; the adapter is step {best}'s checkpoint (lowest held-out loss, {evals[best]:.4f})"
    return Outcome(best, evals.get(best) if best is not None else None, base_eval_loss, reason, message)
