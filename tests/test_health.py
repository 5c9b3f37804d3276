"""Training health and out of memory: each signal on scripted loss sequences, the batch arithmetic, and real
runs on the tiny model (an absurd learning rate, a dead network, out-of-memory errors injected in the forward pass)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from safetensors.torch import load_file

from helpers import REPO, copy_home
from milton_lora.config import TrainConfig
from milton_lora.demo.samples import write_cpu_config
from milton_lora.registry import Registry
from milton_lora.settings import Settings
from milton_lora.train.health import (
    DIVERGENCE,
    NON_FINITE,
    OVERFITTING,
    PLATEAU,
    SPIKE,
    HealthMonitor,
    last_good_checkpoint,
)
from milton_lora.train.oom import smaller_batch
from milton_lora.train.schedule import micro_batching

SHIPPED = REPO / "training" / "configs"
CONFIG = TrainConfig(base_model_path="m", num_epochs=3, lora_r=16, learning_rate=2e-4, warmup_steps=10,
                     early_stopping_patience=0)  # fmt: skip


def feed(losses: list[float], evals: dict[int, float] | None = None, steps_per_epoch: int = 1000,
         config: TrainConfig = CONFIG) -> HealthMonitor:  # fmt: skip
    """A monitor fed a scripted run: train loss at steps 1..n, eval losses at the given steps."""
    monitor = HealthMonitor(config)
    for step, loss in enumerate(losses, start=1):
        monitor.observe({"loss": loss, "grad_norm": 1.0, "step": step, "epoch": step / steps_per_epoch})
        if evals and step in evals:
            monitor.observe({"eval_loss": evals[step], "step": step, "epoch": step / steps_per_epoch})
    return monitor


def kinds(monitor: HealthMonitor) -> list[tuple[str, int]]:
    return [(signal.kind, signal.step) for signal in monitor.signals]


def descending(n: int, start: float = 2.5, end: float = 1.0) -> list[float]:
    """A healthy curve: exponential descent with +-3% alternating noise."""
    return [end + (start - end) * math.exp(-i / (n / 4)) * (1.03 if i % 2 else 0.97) for i in range(n)]


# --- scripted loss sequences ---------------------------------------------------------------------


def test_a_healthy_curve_raises_nothing() -> None:
    monitor = feed(descending(90), evals={30: 1.6, 60: 1.3, 90: 1.2}, steps_per_epoch=30)
    assert monitor.signals == [] and monitor.record() == {"status": "ok", "signals": []}
    assert monitor.summary() == "ok"


@pytest.mark.parametrize("field", ["loss", "grad_norm"])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_loss_or_gradient_stops_at_its_step(field: str, bad: float) -> None:
    monitor = feed([2.0, 1.9, 1.8])
    monitor.observe({"loss": 1.7, "grad_norm": 1.0, field: bad, "step": 4, "epoch": 0.1})
    assert monitor.stopped is not None and kinds(monitor) == [(NON_FINITE, 4)]
    assert f"{field} {bad}" in monitor.stopped.message
    assert "learning_rate (0.0002 -> 2e-05)" in monitor.stopped.advice
    assert monitor.last_finite_step() == 3
    assert monitor.observe({"loss": 1.0, "step": 5, "epoch": 0.2}) == []  # nothing after the stop counts
    assert monitor.record(Path("ckpt"))["status"] == "stopped"


def test_a_loss_far_above_the_running_median_is_a_spike() -> None:
    losses = [1.0, 1.05, 0.95, 1.02, 0.98, 1.0, 3.1, 1.0, 1.6, 0.99]
    monitor = feed(losses)
    assert kinds(monitor) == [(SPIKE, 7)]  # 1.6 is not twice the median
    assert "3.1000, 3.1x the running median 1.0000" in monitor.signals[0].message
    assert "max_grad_norm" in monitor.signals[0].advice


def test_doubling_near_zero_loss_is_noise_not_a_spike() -> None:
    assert feed([0.05, 0.04, 0.05, 0.06, 0.05, 0.05, 0.2, 0.05]).signals == []


def test_the_first_losses_never_spike() -> None:
    assert feed([6.0, 6.1, 20.0, 6.0]).signals == []


def test_a_loss_that_goes_up_and_stays_up_is_divergence_flagged_once() -> None:
    losses = [*descending(40, 2.5, 1.0), 1.5, 2.2, 2.9, 3.4, 3.6, 3.8, 4.0, 4.1, 4.2, 4.3]
    monitor = feed(losses)
    divergence = [s for s in monitor.signals if s.kind == DIVERGENCE]
    assert len(divergence) == 1 and divergence[0].step == 44  # the 5-loss median passed 2x its best there
    assert "learning_rate (0.0002 -> 5e-05)" in divergence[0].advice
    assert not monitor.stopped


def test_eval_rising_while_train_falls_is_overfitting_from_the_best_evaluation() -> None:
    monitor = feed(descending(120), evals={30: 1.40, 60: 1.30, 90: 1.36, 120: 1.45}, steps_per_epoch=60)
    assert kinds(monitor) == [(OVERFITTING, 60)]
    signal = monitor.signals[0]
    assert "1.3000 at step 60 -> 1.4500 at step 120" in signal.message
    assert "num_epochs: 3 -> 1" in signal.advice and "lora_r (16 -> 8)" in signal.advice
    assert "learning_rate (0.0002 -> 0.0001)" in signal.advice


def test_with_early_stopping_overfitting_is_the_cure_not_a_finding() -> None:
    config = CONFIG.model_copy(update={"early_stopping_patience": 3})
    monitor = feed(descending(120), evals={30: 1.40, 60: 1.30, 90: 1.36, 120: 1.45}, config=config)
    assert OVERFITTING not in {s.kind for s in monitor.signals}


def test_overfitting_advice_names_max_steps_when_the_run_is_counted_in_steps() -> None:
    config = CONFIG.model_copy(update={"max_steps": 120})
    monitor = feed(descending(120), evals={30: 1.40, 60: 1.30, 90: 1.36, 120: 1.45}, config=config)
    assert "max_steps: 120 -> 60" in monitor.signals[0].advice


@pytest.mark.parametrize(
    ("losses", "evals"),
    [
        ([2.0] * 60 + [2.2] * 30 + [2.4] * 30, {30: 1.4, 60: 1.3, 90: 1.36, 120: 1.45}),  # train rising too
        (descending(120), {30: 1.4, 60: 1.300, 90: 1.302, 120: 1.305}),  # a rise within noise
        (descending(120), {30: 1.4, 60: 1.3, 90: 1.36, 120: 1.33}),  # not rising every time
    ],
)
def test_what_is_not_overfitting(losses: list[float], evals: dict[int, float]) -> None:
    assert OVERFITTING not in {s.kind for s in feed(losses, evals, steps_per_epoch=60).signals}


def test_a_final_evaluation_repeating_the_last_one_is_not_a_rise() -> None:
    monitor = feed(descending(120), evals={40: 1.4, 80: 1.3, 120: 1.36}, steps_per_epoch=40)
    monitor.observe({"eval_loss": 1.45, "step": 120, "epoch": 3.0})
    assert monitor.signals == []


def test_a_loss_flat_through_the_first_epoch_is_reported_at_its_end() -> None:
    monitor = feed([2.30, 2.31, 2.29, 2.30, 2.30, 2.29, 2.28, 2.30, 1.5], steps_per_epoch=8)
    assert kinds(monitor) == [(PLATEAU, 8)]
    assert "learning_rate (0.0002 -> 0.0004)" in monitor.signals[0].advice
    assert feed(descending(16), steps_per_epoch=8).signals == []
    assert feed([2.3] * 7, steps_per_epoch=8).signals == []  # the first epoch has not ended


def test_replaying_a_resumed_history_rebuilds_the_same_signals() -> None:
    losses = [1.0, 1.05, 0.95, 1.02, 0.98, 1.0, 3.1, 1.0]
    history = [{"loss": loss, "grad_norm": 1.0, "step": s, "epoch": s / 1000} for s, loss in enumerate(losses, 1)]
    resumed = HealthMonitor(CONFIG)
    resumed.observe({"loss": 9.0, "step": 99, "epoch": 0.1})  # what it saw before the restart is dropped
    resumed.replay(history)
    assert resumed.signals == feed(losses).signals and resumed.signals


def test_the_last_good_checkpoint_gave_a_finite_loss(tmp_path: Path) -> None:
    for step in (1, 2, 3):
        (tmp_path / f"checkpoint-{step}").mkdir()
    # loss at step 3 finite, nan at step 4: the weights after step 3 produced the nan
    assert last_good_checkpoint(tmp_path, last_finite_step=3) == tmp_path / "checkpoint-2"
    assert last_good_checkpoint(tmp_path, last_finite_step=1) is None


def test_the_loss_chart_marks_each_signal_and_leaves_out_non_finite_values() -> None:
    from milton_lora.report import line_chart

    signals = [{"kind": kind, "step": step, "message": f"{kind} <at> {step}"}
               for kind, step in ((SPIKE, 3), (OVERFITTING, 2), (NON_FINITE, 6))]  # fmt: skip
    svg = line_chart({"train loss": [(1, 2.0), (2, 1.5), (3, 4.0), (4, math.nan)]}, "loss", markers=signals)
    assert [svg.count(f'class="marker {kind}"') for kind in (SPIKE, OVERFITTING, NON_FINITE)] == [1, 1, 1]
    assert "step 6</text>" in svg and "nan" not in svg.lower().replace("nan/inf", "")  # the axis reaches the marker
    assert "non_finite &lt;at&gt; 6" in svg and "overfitting from here" in svg


# --- batch arithmetic ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch", "accumulation", "expected"), [(4, 4, (2, 8)), (6, 1, (3, 2)), (3, 2, (1, 6)), (1, 8, None)]
)
def test_a_smaller_batch_keeps_the_examples_per_step(batch: int, accumulation: int, expected: Any) -> None:
    config = CONFIG.model_copy(update={"packing": False, "per_device_train_batch_size": batch,
                                       "gradient_accumulation_steps": accumulation})  # fmt: skip
    smaller = smaller_batch(config, micro_batching)
    got = None if smaller is None else (smaller.per_device_train_batch_size, smaller.gradient_accumulation_steps)
    assert got == expected


def test_with_packing_a_smaller_batch_would_not_shrink_a_forward_pass() -> None:
    config = CONFIG.model_copy(update={"packing": True, "per_device_train_batch_size": 8})
    assert micro_batching(config)[0] == 1 and smaller_batch(config, micro_batching) is None


# --- real runs on the tiny model -----------------------------------------------------------------


def _config(home: Path, tiny_model_dir: Path, name: str, **overrides: object) -> str:
    write_cpu_config(home / f"training/configs/{name}.yaml", tiny_model_dir, SHIPPED / "lora_light.yaml",
                     run_name_prefix=name, **overrides)  # fmt: skip
    return f"{name}.yaml"


def test_an_absurd_learning_rate_stops_the_run_with_a_clear_error(trained_home: Path, tmp_path: Path,
                                                                   tiny_model_dir: Path, cli) -> None:  # fmt: skip
    """lr 1e30: weights overflow and the loss turns nan at the first step past warmup (step 1 has lr 0). Without a
    held-out split (whose evaluations would see the nan first), the train loss is what catches it."""
    home = copy_home(trained_home, tmp_path / "home")
    (home / "no_test.jsonl").write_text("")
    config = _config(home, tiny_model_dir, "absurd", learning_rate=1e30, warmup_steps=3, save_steps=1, max_steps=8,
                     test_file="no_test.jsonl")  # fmt: skip
    result = cli("--home", str(home), "train", "--config", config)

    assert result.exit_code == 1 and "Traceback" not in result.stderr
    (run_dir,) = (home / "runs").glob("absurd_*")
    error = result.stderr[result.stderr.index("error: ") :]
    assert "training stopped: loss nan" in error and "at step 3" in error
    assert f"last good checkpoint {run_dir / 'checkpoints' / 'checkpoint-1'}" in error
    assert "no adapter was written" in error and "lower learning_rate (1e+30 -> 1e+29)" in error
    assert not (home / "adapters" / run_dir.name).exists()
    assert run_dir.name not in Registry.of(Settings.from_env(home)).load().adapters
    # stopped at once: nothing saved from the step that went non-finite
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    health = json.loads((run_dir / "health.json").read_text())
    assert health["status"] == "stopped" and health["signals"][0]["kind"] == NON_FINITE
    assert health["last_good_checkpoint"] == str(run_dir / "checkpoints" / "checkpoint-1")

    report = cli("--home", str(home), "report", run_dir.name)
    html = (run_dir / "report.html").read_text()
    assert report.exit_code == 0 and 'class="marker non_finite"' in html and "Stopped: no adapter" in html


def test_a_dead_network_is_reported_as_no_progress(trained_home: Path, tmp_path: Path, tiny_model_dir: Path,
                                                   cli) -> None:  # fmt: skip
    """lr 1e3 overflows the RMS norms: the loss sits at uniform guessing with zero gradients."""
    home = copy_home(trained_home, tmp_path / "home")
    result = cli("--home", str(home), "train", "--config", _config(home, tiny_model_dir, "dead", learning_rate=1e3,
                                                                    max_steps=4))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (adapter,) = (home / "adapters").glob("dead_*")
    health = json.loads((adapter / "metadata.json").read_text())["health"]
    assert health["status"] == "warnings" and [s["kind"] for s in health["signals"]] == [PLATEAU]
    assert "warning: loss has not moved in the first epoch" in " ".join(result.stderr.split())


def test_the_trained_adapter_records_its_health(trained_home: Path) -> None:
    (metadata_path,) = (trained_home / "adapters").glob("*/metadata.json")
    metadata = json.loads(metadata_path.read_text())
    assert metadata["oom_retries"] == [] and metadata["health"]["status"] in ("ok", "warnings")
    assert {s["kind"] for s in metadata["health"]["signals"]} <= {OVERFITTING, PLATEAU}  # a sane run: no blow-up


@pytest.fixture
def memory_limit() -> Iterator[dict[str, int]]:
    """A pretend GPU: after `after` training forward passes, one with more than `rows` rows runs out of memory."""
    limit = {"after": 5, "rows": 1, "passes": 0}

    def check(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        if isinstance(module, torch.nn.Embedding) and module.training:
            limit["passes"] += 1
            if limit["passes"] > limit["after"] and args[0].shape[0] > limit["rows"]:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")

    handle = torch.nn.modules.module.register_module_forward_pre_hook(check)
    yield limit
    handle.remove()


def _adapter_weights(home: Path, prefix: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    (adapter,) = (home / "adapters").glob(f"{prefix}_*")
    metadata = json.loads((adapter / "metadata.json").read_text())
    return metadata, load_file(str(adapter / "adapter_model.safetensors"))


def test_out_of_memory_halves_the_batch_and_continues_where_it_was(trained_home: Path, tmp_path: Path,
                                                                    tiny_model_dir: Path, cli,
                                                                    memory_limit: dict[str, int]) -> None:  # fmt: skip
    home = copy_home(trained_home, tmp_path / "home")
    settings = {"packing": False, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
                "max_steps": 8, "save_steps": 3, "eval_steps": 4}  # fmt: skip
    memory_limit["after"] = 10**9
    fits = cli("--home", str(home), "train", "--config", _config(home, tiny_model_dir, "fits", **settings))
    assert fits.exit_code == 0, fits.stderr
    memory_limit.update(after=5, passes=0)
    result = cli("--home", str(home), "train", "--config", _config(home, tiny_model_dir, "oom", **settings))
    assert result.exit_code == 0, result.stderr

    metadata, weights = _adapter_weights(home, "oom")
    reference_metadata, reference = _adapter_weights(home, "fits")
    config = metadata["config"]
    assert (config["per_device_train_batch_size"], config["gradient_accumulation_steps"]) == (1, 4)
    retries = metadata["oom_retries"]
    assert [(r["per_device_train_batch_size"], r["gradient_accumulation_steps"]) for r in retries] == [
        ([4, 2], [1, 2]), ([2, 1], [2, 4])]  # fmt: skip
    assert retries[0]["step"] == 5 and retries[0]["continued_from"].endswith("checkpoint-5")
    warnings = " ".join(result.stderr.split())  # rich wraps lines at the terminal width
    assert (
        "warning: out of memory after step 5: per_device_train_batch_size 4 -> 2, gradient_accumulation_steps "
        "1 -> 2 (4 examples per optimizer step, as before); continued from checkpoint-5"
    ) in warnings
    assert "out of memory" in result.stdout  # the end summary's rows
    (run_dir,) = (home / "runs").glob("oom_*")
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["per_device_train_batch_size"] == 1
    # the same examples per step and the state it had: the same adapter as the run that never ran out
    assert metadata["results"]["global_steps"] == 8
    assert metadata["results"]["mean_train_loss"] == pytest.approx(reference_metadata["results"]["mean_train_loss"])
    for name, tensor in reference.items():
        torch.testing.assert_close(weights[name], tensor, rtol=1e-4, atol=1e-6, msg=name)


def test_out_of_memory_at_one_row_per_pass_stops_with_the_advice(trained_home: Path, tmp_path: Path,
                                                                 tiny_model_dir: Path, cli,
                                                                 memory_limit: dict[str, int]) -> None:  # fmt: skip
    """Packing already feeds one packed row per forward pass: a smaller batch would change nothing."""
    home = copy_home(trained_home, tmp_path / "home")
    memory_limit.update(after=0, rows=0)
    result = cli("--home", str(home), "train", "--config", _config(home, tiny_model_dir, "packed", max_steps=4))
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert "CUDA out of memory after step 0 with one packed row of max_seq_length 512 tokens" in result.stderr
    assert "lower max_seq_length (512 -> 256), or set use_gradient_checkpointing: true" in result.stderr
    assert not list((home / "adapters").glob("packed_*"))
