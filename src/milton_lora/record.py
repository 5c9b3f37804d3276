"""The adapter's training record: `adapters/<run_id>/metadata.json`, one typed and versioned model.

`train` writes it (`write_record`); `eval`, the report, `adapter export`, `cycle`, `--from-production` replay and
the dashboard read it (`read_record`). Each section the readers use is typed; `health` and `oom_retries` keep the
shapes their owners (`train/health.py`, `train/oom.py`) give them.

Versions: `schema_version` 2 is the first typed record. Files written before it carry no version and read as
version 1, which has the same sections. A record from a newer writer keeps the keys this version does not know
(they are carried through unchanged), so an older `milton-lora` never drops what a newer one wrote.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from milton_lora.errors import MiltonError
from milton_lora.fileio import atomic_write_text
from milton_lora.lineage import Lineage
from milton_lora.settings import ADAPTER_CONFIG, ADAPTER_METADATA

RECORD_VERSION = 2


class _Section(BaseModel):
    """Unknown keys are kept: they come from a newer writer, and rewriting the file must not drop them."""

    model_config = ConfigDict(extra="allow")


class DataProvenance(_Section):
    """Which files the run trained and was evaluated on, and what they held."""

    train_file: str | None = None
    test_file: str | None = None
    train_sha256: str | None = None
    trained_file: str | None = None
    trained_sha256: str | None = None
    test_sha256: str | None = None
    export_files_sha256: dict[str, str] | None = None
    export_created_at: str | None = None
    export_window_days: int | None = None
    train_examples: int = 0
    test_examples: int = 0
    train_tokens: int = 0
    train_labelled_tokens: int = 0
    truncated_examples: int = 0
    dropped_without_labels: int = 0
    chat_template_notes: list[str] = []


class Kernels(_Section):
    attention: str | None = None
    loss: str | None = None
    lora: str | None = None
    gradient_checkpointing: bool = False


class Timings(_Section):
    train_seconds: float | None = None
    train_runtime: float | None = None
    eval_seconds_in_training: float | None = None


class Results(_Section):
    global_steps: int = 0
    final_train_loss: float | None = None
    mean_train_loss: float | None = None
    final_eval_loss: float | None = None
    tokens_seen: int = 0
    tokens_per_second: float | None = None
    best_step: int | None = None  # the step whose checkpoint is the adapter (lowest held-out loss)
    best_eval_loss: float | None = None
    base_eval_loss: float | None = None  # the base model's held-out loss, measured by the run before its first step
    stop_reason: str | None = None  # completed or early_stopping (`train/outcome.py`)
    stop_message: str | None = None


class TrainingSchedule(_Section):
    """The schedule the run trained with, sized to its data (`train/schedule.py`)."""

    optimizer_steps: int
    steps_per_epoch: int
    rows_per_epoch: int
    rows_per_step: int
    tokens_per_step: int
    peak_learning_rate: float
    warmup_steps: int | None = None
    eval_steps: int | None = None
    changes: list[str] = []


class InitFrom(_Section):
    """The production adapter a `--from-production` run continued from."""

    run_id: str
    adapter_path: str
    adapter_sha256: str | None = None


class Replay(_Section):
    """The older conversations a `--from-production` run mixed back in."""

    fraction: float
    count: int
    available: int
    source: str
    source_sha256: str | None = None


class GeneralReplayMade(_Section):
    """The general questions an SFT run mixed in, answered by the base model (`train/general_replay.py`)."""

    fraction: float
    requested: int
    count: int
    asked: int
    shortened: int  # cut at the token budget, kept up to the last full sentence
    dropped: int
    pool: int
    prompts_file: str
    prompts_sha256: str
    system: str | None = None
    max_new_tokens: int
    seconds: float
    from_plan: bool = False  # taken from the plan `train --dry-run` made with the same inputs


class PreferenceData(_Section):
    """What a `method: dpo | kto` run learned from: `preferences.jsonl`'s counts per split."""

    file: str
    sha256: str | None = None
    train_pairs: int = 0
    train_labels: int = 0
    train_desirable: int = 0
    train_undesirable: int = 0
    test_pairs: int = 0
    test_labels: int = 0


class TrainingRecord(_Section):
    """What one training run made, from what, how, and how it went."""

    schema_version: int = RECORD_VERSION
    run_id: str
    created_at: str | None = None
    config_path: str | None = None
    config: dict[str, Any] = {}
    method: str = "sft"  # sft, dpo or kto (`train/preference.py`); records before preference training are sft
    preferences: PreferenceData | None = None
    base_model_path: str | None = None
    base_model_config_sha256: str | None = None
    data: DataProvenance = DataProvenance()
    precision: str | None = None
    packing: bool | None = None
    kernels: Kernels = Kernels()
    world_size: int = 1
    git_commit: str | None = None
    libraries: dict[str, str | None] = {}
    timings: Timings = Timings()
    results: Results = Results()
    schedule: TrainingSchedule | None = None
    trainable_parameters: int | None = None
    total_parameters: int | None = None
    health: dict[str, Any] | None = None
    oom_retries: list[dict[str, Any]] = []
    init_from: InitFrom | None = None
    replay: Replay | None = None
    general_replay: GeneralReplayMade | None = None
    lineage: Lineage = Lineage()  # what the weights learned, as keyed hashes (`milton_lora.lineage`)

    @property
    def base_model(self) -> Path | None:
        return Path(self.base_model_path) if self.base_model_path else None

    def config_value(self, key: str, default: Any = None) -> Any:
        """One key of the training config as the run used it (the config is stored as the run validated it)."""
        return self.config.get(key, default)

    @property
    def health_status(self) -> str | None:
        return (self.health or {}).get("status")

    @property
    def health_signals(self) -> list[dict[str, Any]]:
        return (self.health or {}).get("signals", [])

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_none=False) + "\n"


def read_record(adapter_dir: Path) -> TrainingRecord | None:
    """The adapter's record; None for an adapter made elsewhere (no metadata.json). A broken file is an error that
    names it."""
    path = adapter_dir / ADAPTER_METADATA
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise MiltonError(f"{path}: cannot read it ({exc}); restore it from a backup or retrain") from None
    try:
        data = json.loads(text)
        if isinstance(data, dict):
            data.setdefault("schema_version", 1)  # written before the record had a version
        return TrainingRecord.model_validate(data)
    except json.JSONDecodeError as exc:
        raise MiltonError(f"{path}: not valid JSON (line {exc.lineno}); restore it or retrain the adapter") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise MiltonError(f"{path}: '{where}': {first['msg']}; restore the file or retrain the adapter") from None


def write_record(adapter_dir: Path, record: TrainingRecord) -> Path:
    path = adapter_dir / ADAPTER_METADATA
    atomic_write_text(path, record.to_json())
    return path


def recorded_base_model(adapter_dir: Path) -> Path | None:
    """The base model the adapter was trained on: training's record, else peft's adapter_config.json (an adapter
    made elsewhere); None when neither names one."""
    record = read_record(adapter_dir)
    if record is not None and record.base_model is not None:
        return record.base_model
    return peft_base_model(adapter_dir)


def peft_base_model(adapter_dir: Path) -> Path | None:
    """The base model peft wrote into adapter_config.json, if any."""
    try:
        named = json.loads((adapter_dir / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    except (OSError, ValueError):
        return None
    return Path(named) if named else None
