"""`milton-lora train` (= `scripts/train_lora.py`): safety checks, the plan, the run, its summary."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from milton_lora.cli.app import app
from milton_lora.cli.common import (
    print_rows,
    print_warning,
    settings_of,
)

if TYPE_CHECKING:
    from milton_lora.record import TrainingRecord

# Shared with `cycle`.
FromProduction = Annotated[
    bool,
    typer.Option(
        "--from-production",
        help="Start from the production adapter's weights and replay older conversations (replay_fraction).",
    ),
]


@app.command()
def train(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", help="Training YAML; a bare name resolves in training/configs/.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Run the safety checks, print the plan, train nothing.")
    ] = False,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Continue an interrupted run from its last checkpoint.")
    ] = None,
    from_production: FromProduction = False,
    init_from: Annotated[
        str | None,
        typer.Option(
            "--init-from",
            help="method: dpo/kto only: continue this adapter (a run id, latest, production) instead of the "
            "config's init_from.",
        ),
    ] = None,
) -> None:
    """Train a LoRA adapter from exported conversations (or, with method: dpo/kto, from the export's preferences)
    and register it as `training`."""
    from milton_lora.train.launch import plan_training

    settings = settings_of(ctx)
    plan = plan_training(settings, config, resume, from_production, claim=not dry_run, init_from=init_from)
    print_rows("Training plan" + (" (dry run: nothing trained)" if dry_run else ""), plan.rows())
    for warning in plan.warnings:
        print_warning(warning)
    if dry_run:
        return
    from milton_lora.train.launch import train_and_register

    result = train_and_register(settings, plan, resume=resume is not None)
    if result.record is not None:  # None on the other processes of a distributed run
        print_training_summary(result.record, plan.adapter_dir, plan.run_dir)


def print_training_summary(record: TrainingRecord, adapter_dir: Path, run_dir: Path, next_step: bool = True) -> None:
    """The run at a glance; `next_step` adds the evaluation command to run next (a cycle runs it itself)."""
    results = record.results

    def loss(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    rows = [
        ("steps", str(results.global_steps)),
        ("final train loss", loss(results.final_train_loss)),
        ("held-out loss", f"{loss(results.final_eval_loss)} (base model: {loss(results.base_eval_loss)})"),
        ("ended", results.stop_message or "-"),
        ("tokens seen", f"{results.tokens_seen:,} ({results.tokens_per_second or 0:,} tok/s)"),
        ("trainable parameters", f"{record.trainable_parameters or 0:,} of {record.total_parameters or 0:,}"),
        ("time", f"{record.timings.train_seconds} s"),
        *health_rows(record),
        ("adapter", str(adapter_dir)),
        ("TensorBoard", f"tensorboard --logdir {run_dir / 'logs'}"),
    ]
    if next_step:
        rows.append(("next", f"milton-lora eval --run-id {record.run_id}"))
    print_rows(f"Trained {record.run_id} (status: training)", rows)


def health_rows(record: TrainingRecord, shown: int = 6) -> list[tuple[str, str]]:
    """The run's health (each signal with its advice, the first few) and the out-of-memory retries it survived."""
    from milton_lora.train.oom import OomRetry

    signals = record.health_signals
    rows = [("health", "ok" if not signals else f"{len(signals)} warning(s)")]
    rows += [(s["kind"].replace("_", " "), f"{s['message']}: {s['advice']}") for s in signals[:shown]]
    if len(signals) > shown:
        rows.append(("", f"{len(signals) - shown} more under health in metadata.json"))
    rows += [("out of memory", OomRetry(**retry).describe()) for retry in record.oom_retries]
    return rows
