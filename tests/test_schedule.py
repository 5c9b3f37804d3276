"""The schedule sized to the data, the outcome of a run (best step, why it ended) and the base-model health flag,
on scripted sizes and curves: no model needed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers import REPO, copy_home
from milton_lora.config import TrainConfig, load_model
from milton_lora.demo.samples import write_cpu_config
from milton_lora.settings import shipped
from milton_lora.train.health import WORSE_THAN_BASE, HealthMonitor
from milton_lora.train.outcome import COMPLETED, EARLY_STOPPED, outcome_of
from milton_lora.train.schedule import MAX_EPOCHS, resolve_schedule

SHIPPED = REPO / "training" / "configs"


def default(**overrides: object) -> TrainConfig:
    config = load_model(shipped("configs", "lora_default.yaml"), TrainConfig)
    return config.model_copy(update=overrides)


def test_a_month_gets_a_smaller_batch_then_more_epochs() -> None:
    # 150 conversations of ~80 tokens pack into 6 rows of 2,048: 4 x 4 rows per step would make 3 steps in 3 epochs.
    schedule = resolve_schedule(default(), rows=6, input_tokens=12_000, trained_tokens=7_000, has_eval=True)
    c = schedule.config
    assert (c.per_device_train_batch_size, c.gradient_accumulation_steps) == (1, 1)
    assert c.num_epochs == 10 and schedule.optimizer_steps == 60 >= c.min_steps
    assert c.warmup_steps == 3  # 5% of 60: the learning rate is at its peak from step 4, not still warming up
    assert c.eval_steps == 8 and schedule.evaluations == 7
    assert schedule.tokens_per_step == 2_000
    assert schedule.changes == ["batch 4 x 4 -> 1 x 1 for at least 60 steps (min_steps)",
                                "num_epochs 3 -> 10 for at least 60 steps (min_steps)"]  # fmt: skip
    assert not schedule.warnings
    rows = dict(schedule.rows())
    assert rows["optimizer steps"].startswith("60 (10 epochs of 6 steps)")
    assert rows["learning rate"].startswith("peak 0.0002")


@pytest.mark.parametrize("rows", range(17, 39))
def test_a_month_of_512_token_rows_trains_one_row_per_step(rows: int) -> None:
    # bench/persona: 100-200 conversations with general replay pack into 17-31 rows of 512 tokens. With a floor
    # of 40 steps, 26 rows made 78 updates of one row and 31 rows 48 updates of two (style 0.74 against 0.92):
    # the shipped floor keeps every such month on one row per step, 3 epochs or more.
    schedule = resolve_schedule(default(), rows=rows, input_tokens=rows * 500, trained_tokens=rows * 300,
                                has_eval=True)  # fmt: skip
    assert schedule.rows_per_step == 1 and schedule.config.num_epochs >= 3
    assert schedule.optimizer_steps == math.ceil(schedule.config.num_epochs * rows) >= 60


def test_a_large_export_keeps_the_config() -> None:
    # 50,000 conversations: 2,000 packed rows, 125 steps of 16 rows per epoch.
    schedule = resolve_schedule(default(), rows=2_000, input_tokens=4_000_000, trained_tokens=2_500_000,
                                has_eval=True)  # fmt: skip
    c = schedule.config
    assert (c.per_device_train_batch_size, c.gradient_accumulation_steps, c.num_epochs) == (4, 4, 3)
    assert schedule.optimizer_steps == 375 and c.warmup_steps == 19 and c.eval_steps == 47
    assert schedule.changes == [] and schedule.warnings == []


def test_only_as_much_smaller_as_needed() -> None:
    # Unpacked, 100 conversations: batch 4 x accumulation 4 is 7 steps per epoch; accumulation 1 is 25.
    schedule = resolve_schedule(default(packing=False), rows=100, input_tokens=8_000, trained_tokens=5_000,
                                has_eval=True)  # fmt: skip
    c = schedule.config
    assert (c.per_device_train_batch_size, c.gradient_accumulation_steps, c.num_epochs) == (4, 1, 3)
    assert schedule.optimizer_steps == 75


def test_explicit_values_win() -> None:
    schedule = resolve_schedule(default(max_steps=10, warmup_steps=3, eval_steps=5), rows=6, input_tokens=12_000,
                                trained_tokens=7_000, has_eval=True)  # fmt: skip
    c = schedule.config
    assert (c.per_device_train_batch_size, c.gradient_accumulation_steps, c.num_epochs) == (4, 4, 3)
    assert (schedule.optimizer_steps, c.warmup_steps, c.eval_steps) == (10, 3, 5)
    assert schedule.warnings == ["only 10 optimizer steps (6 rows per epoch): too few to learn from; raise max_steps "
                                 "(10 -> 60)"]  # fmt: skip


def test_min_steps_off_still_warns_about_a_handful_of_steps() -> None:
    schedule = resolve_schedule(default(min_steps=0), rows=6, input_tokens=12_000, trained_tokens=7_000,
                                has_eval=False)  # fmt: skip
    assert schedule.optimizer_steps == 3 and schedule.config.eval_steps == 0
    assert "only 3 optimizer steps" in schedule.warnings[0]


def test_epochs_are_capped_for_a_tiny_export() -> None:
    schedule = resolve_schedule(default(), rows=2, input_tokens=3_000, trained_tokens=2_000, has_eval=True)
    assert schedule.config.num_epochs == MAX_EPOCHS and schedule.optimizer_steps == 20
    assert "only 20 optimizer steps" in schedule.warnings[0] and "export more days" in schedule.warnings[0]


def test_a_long_explicit_warmup_is_warned_about() -> None:
    schedule = resolve_schedule(default(warmup_steps=40), rows=6, input_tokens=12_000, trained_tokens=7_000,
                                has_eval=True)  # fmt: skip
    assert any("over half" in warning for warning in schedule.warnings)


@pytest.mark.parametrize("rows", [3, 6, 60, 600, 6_000])
def test_every_size_gets_enough_steps_warmup_and_evaluations(rows: int) -> None:
    schedule = resolve_schedule(default(), rows=rows, input_tokens=rows * 2_000, trained_tokens=rows * 1_000,
                                has_eval=True)  # fmt: skip
    c = schedule.config
    assert schedule.optimizer_steps >= min(c.min_steps, MAX_EPOCHS * rows)
    assert 0 < c.warmup_steps <= 0.1 * schedule.optimizer_steps
    assert 4 <= schedule.evaluations <= c.evals_per_run


def history(evals: list[tuple[int, float]]) -> list[dict]:
    return [{"step": step, "loss": 3.0 - step / 100, "epoch": step / 10} for step, _ in evals] + [
        {"step": step, "eval_loss": loss, "epoch": step / 10} for step, loss in evals
    ]


def test_outcome_of_an_early_stopped_run() -> None:
    curve = [(5, 3.1), (10, 2.6), (15, 2.7), (20, 2.8), (25, 2.9)]
    outcome = outcome_of(history(curve), global_step=25, planned_steps=42, best_step=10, patience=3,
                         base_eval_loss=3.2)  # fmt: skip
    assert (outcome.best_step, outcome.best_eval_loss, outcome.stop_reason) == (10, 2.6, EARLY_STOPPED)
    assert outcome.stop_message == (
        "early stopping at step 25 of 42: no lower held-out loss in 3 evaluations after "
        "step 10; the adapter is step 10's checkpoint (lowest held-out loss, 2.6000)"
    )


def test_outcome_of_a_completed_run() -> None:
    outcome = outcome_of(history([(5, 3.1), (10, 2.6)]), global_step=10, planned_steps=10, best_step=10, patience=3,
                         base_eval_loss=None)  # fmt: skip
    assert outcome.stop_reason == COMPLETED and outcome.stop_message.startswith("all 10 planned steps done")
    no_split = outcome_of([{"step": 10, "loss": 1.0}], 10, 10, None, 0, None)
    assert (no_split.best_step, no_split.stop_message) == (None, "all 10 planned steps done")


def test_an_adapter_worse_than_its_base_is_not_ok() -> None:
    monitor = HealthMonitor(default())
    for entry in history([(5, 3.1), (10, 3.3)]):
        monitor.observe(entry)
    monitor.compare_with_base(adapter_loss=3.1, base_loss=3.2, step=5)
    assert monitor.record()["status"] == "ok"
    monitor.compare_with_base(adapter_loss=3.39, base_loss=2.84, step=5)
    record = monitor.record()
    assert record["status"] == "warnings" and record["signals"][-1]["kind"] == WORSE_THAN_BASE
    assert "3.3900" in record["signals"][-1]["message"] and "2.8400" in record["signals"][-1]["message"]
    assert monitor.summary() == "worse than base"


def test_a_real_run_writes_its_best_checkpoint_and_stops_early(trained_home: Path, tmp_path: Path,
                                                               tiny_model_dir: Path, cli) -> None:  # fmt: skip
    """The tiny model at a learning rate that overshoots: the held-out loss turns up, patience 1 stops the run,
    and the adapter written is the lowest held-out loss's checkpoint, judged against the base model's loss."""
    home = copy_home(trained_home, tmp_path / "home")
    write_cpu_config(home / "training/configs/es.yaml", tiny_model_dir, SHIPPED / "lora_default.yaml",
                     run_name_prefix="es", max_steps=-1, num_epochs=1, min_steps=24, learning_rate=0.05,
                     early_stopping_patience=1, evals_per_run=6)  # fmt: skip
    dry = cli("--home", str(home), "train", "--config", "es.yaml", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "optimizer steps" in dry.stdout and "tokens per step" in dry.stdout and "peak 0.05" in dry.stdout
    result = cli("--home", str(home), "train", "--config", "es.yaml")
    assert result.exit_code == 0, result.stderr
    (adapter,) = list((home / "adapters").glob("es_*"))
    metadata = json.loads((adapter / "metadata.json").read_text())
    results, schedule = metadata["results"], metadata["schedule"]
    assert schedule["optimizer_steps"] >= 24 and schedule["eval_steps"] == math.ceil(schedule["optimizer_steps"] / 6)
    state = json.loads((home / "runs" / adapter.name / "checkpoints" / f"checkpoint-{results['global_steps']}" /
                        "trainer_state.json").read_text())  # fmt: skip
    evals = {log["step"]: log["eval_loss"] for log in state["log_history"] if "eval_loss" in log}
    best = min(evals, key=evals.__getitem__)
    assert results["best_step"] == best and results["final_eval_loss"] == evals[best]
    assert results["stop_reason"] == "early_stopping" and results["global_steps"] < schedule["optimizer_steps"]
    assert list(evals)[-1] == results["global_steps"] and evals[results["global_steps"]] > evals[best]
    written = load_file(adapter / "adapter_model.safetensors")
    kept = load_file(home / "runs" / adapter.name / "checkpoints" / f"checkpoint-{best}" / "adapter_model.safetensors")
    assert written.keys() == kept.keys() and all(torch.equal(written[k], kept[k]) for k in written)
    base_loss = results["base_eval_loss"]
    assert base_loss > 0 and any(s["kind"] == "worse_than_base" for s in metadata["health"]["signals"]) == (
        evals[best] > base_loss
    )
    assert "held-out loss" in result.stdout and "early stopping at step" in result.stdout
