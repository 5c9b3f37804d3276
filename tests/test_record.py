"""The adapter's training record (`metadata.json`): versions, unknown keys kept, errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from milton_lora.errors import MiltonError
from milton_lora.record import RECORD_VERSION, TrainingRecord, read_record, write_record

VERSION_ONE = {
    "run_id": "milton_lora_20250101_000000",
    "created_at": "2025-01-01T00:00:00+00:00",
    "config_path": "training/configs/lora_default.yaml",
    "config": {"lora_r": 16, "learning_rate": 0.0002, "max_seq_length": 1024, "load_in_4bit": False},
    "base_model_path": "/models/base",
    "data": {"train_file": "/home/x/train.jsonl", "train_sha256": "ab", "train_examples": 12},
    "results": {"global_steps": 30, "final_train_loss": 1.2, "final_eval_loss": 1.4, "tokens_seen": 900},
    "health": {"status": "ok", "signals": []},
    "init_from": {"run_id": "milton_lora_20241201_000000", "adapter_path": "adapters/x", "adapter_sha256": "cd"},
}


def test_a_record_without_a_version_reads_as_version_one(tmp_path: Path) -> None:
    (tmp_path / "metadata.json").write_text(json.dumps(VERSION_ONE))
    record = read_record(tmp_path)
    assert record is not None and record.schema_version == 1
    assert record.base_model == Path("/models/base") and record.config_value("max_seq_length") == 1024
    assert record.results.global_steps == 30 and record.init_from.run_id == "milton_lora_20241201_000000"
    assert record.health_status == "ok" and record.replay is None


def test_keys_from_a_newer_writer_survive_a_rewrite(tmp_path: Path) -> None:
    newer = {**VERSION_ONE, "schema_version": RECORD_VERSION + 1, "provenance": {"train": ["h1"]},
             "results": {**VERSION_ONE["results"], "best_step": 20}}  # fmt: skip
    (tmp_path / "metadata.json").write_text(json.dumps(newer))
    write_record(tmp_path, read_record(tmp_path))
    again = json.loads((tmp_path / "metadata.json").read_text())
    assert again["provenance"] == {"train": ["h1"]} and again["results"]["best_step"] == 20
    assert again["schema_version"] == RECORD_VERSION + 1


def test_a_new_record_carries_the_current_version() -> None:
    assert TrainingRecord(run_id="r").schema_version == RECORD_VERSION


def test_no_file_is_no_record(tmp_path: Path) -> None:
    assert read_record(tmp_path) is None


@pytest.mark.parametrize(
    ("text", "named"),
    [("{not json", "not valid JSON (line 1)"), (json.dumps({**VERSION_ONE, "results": {"global_steps": "many"}}),
                                                "'results.global_steps'")],
)  # fmt: skip
def test_a_broken_record_is_an_error_naming_the_file_and_key(tmp_path: Path, text: str, named: str) -> None:
    (tmp_path / "metadata.json").write_text(text)
    with pytest.raises(MiltonError) as caught:
        read_record(tmp_path)
    assert str(tmp_path / "metadata.json") in str(caught.value) and named in str(caught.value)
