"""Export: windows, stable split, duplicates, redaction, dry run, atomicity, review, redact.yaml, via the CLI and
the documented script."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from helpers import REPO, run_subprocess
from milton_lora.errors import MiltonError
from milton_lora.export import export_training_data, split_of
from milton_lora.fileio import sha256_file
from milton_lora.memory import Conversation, MemoryStore, Message
from milton_lora.settings import Settings

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


def add(store: MemoryStore, key: str, age_days: float, turns: list[tuple[str, str]]) -> None:
    at = NOW - timedelta(days=age_days)
    messages = [Message(role, text, at + timedelta(seconds=i)) for i, (role, text) in enumerate(turns)]
    with store.transaction():
        store.insert_conversation(Conversation("test", key, key, at, messages))


def fill(settings: Settings, count: int = 60) -> None:
    with MemoryStore(settings.memory_db) as store:
        for i in range(count):
            add(store, f"c{i}", age_days=i, turns=[("user", f"question {i}"), ("assistant", f"answer {i}")])


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_split_is_stable_across_windows(settings: Settings, tmp_path: Path) -> None:
    fill(settings)
    sides: dict[str, str] = {}
    for days in (7, 30, 90):
        out = tmp_path / f"d{days}"
        export_training_data(settings.memory_db, out, days, now=NOW)
        for side in ("train", "test"):
            for record in read_jsonl(out / f"{side}.jsonl"):
                question = record["messages"][0]["content"]
                assert sides.setdefault(question, side) == side
    assert 0.1 < sum(side == "test" for side in sides.values()) / len(sides) < 0.3
    assert split_of("chatgpt:abc") == split_of("chatgpt:abc")


def test_days_boundary_is_inclusive(settings: Settings, tmp_path: Path) -> None:
    with MemoryStore(settings.memory_db) as store:
        add(store, "inside", age_days=30, turns=[("user", "edge"), ("assistant", "in")])
        add(store, "outside", age_days=30.0001, turns=[("user", "old"), ("assistant", "out")])
    summary = export_training_data(settings.memory_db, tmp_path / "out", 30, now=NOW)
    assert summary.conversations_in_window == 1
    contents = (tmp_path / "out" / "train.jsonl").read_text() + (tmp_path / "out" / "test.jsonl").read_text()
    assert "edge" in contents and "old" not in contents


def test_duplicates_and_no_assistant_are_counted(settings: Settings, tmp_path: Path) -> None:
    with MemoryStore(settings.memory_db) as store:
        add(store, "a", 1, [("user", "hi"), ("assistant", "hello")])
        add(store, "b", 1, [("user", "hi"), ("assistant", "hello")])
        add(store, "c", 1, [("user", "anyone there?")])
        add(store, "d", 1, [("system", "be brief"), ("user", "x"), ("assistant", "y")])
    summary = export_training_data(settings.memory_db, tmp_path / "out", 7, now=NOW)
    assert (summary.duplicates_dropped, summary.skipped_no_assistant, summary.conversations_exported) == (1, 1, 2)
    records = read_jsonl(tmp_path / "out" / "train.jsonl") + read_jsonl(tmp_path / "out" / "test.jsonl")
    roles = sorted(tuple(m["role"] for m in r["messages"]) for r in records)
    assert roles == [("system", "user", "assistant"), ("user", "assistant")]


def test_secrets_never_reach_the_files(settings: Settings, tmp_path: Path) -> None:
    secret = "sk-proj-Zq8vN3xL0pR7tY2wK5mB9cD4fG6hJ1sA3eU8iO2"
    with MemoryStore(settings.memory_db) as store:
        add(store, "s", 1, [("user", f"my key is {secret}, mail bob@corp.example"), ("assistant", "Noted.")])
    out = tmp_path / "out"
    summary = export_training_data(settings.memory_db, out, 7, now=NOW)
    on_disk = "".join(p.read_text() for p in out.iterdir())
    assert secret not in on_disk and "bob@corp.example" not in on_disk
    assert summary.redactions == {"API_KEY": 1, "EMAIL": 1}
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["files"]["train.jsonl"] == sha256_file(out / "train.jsonl")
    assert metadata["files"]["test.jsonl"] == sha256_file(out / "test.jsonl")
    assert metadata["redactions"] == {"API_KEY": 1, "EMAIL": 1}


def test_dry_run_writes_nothing(settings: Settings, cli) -> None:
    fill(settings, 5)
    result = cli("export", "--days", "3650", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "dry run" in result.stdout
    assert not settings.export_dir.exists()


def test_failed_export_leaves_previous_intact(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(settings, 20)
    export_training_data(settings.memory_db, settings.export_dir, 3650)
    before = {p.name: p.read_bytes() for p in settings.export_dir.iterdir()}
    with MemoryStore(settings.memory_db) as store:
        add(store, "new", 0, [("user", "fresh"), ("assistant", "turn")])

    real_fsync = os.fsync
    calls = {"n": 0}

    def failing_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        export_training_data(settings.memory_db, settings.export_dir, 3650)
    assert {p.name: p.read_bytes() for p in settings.export_dir.iterdir()} == before


def test_empty_window_is_an_error_and_keeps_previous(settings: Settings, cli) -> None:
    with MemoryStore(settings.memory_db) as store:
        add(store, "old", 100, [("user", "q"), ("assistant", "a")])
    assert cli("export").exit_code == 0
    before = (settings.export_dir / "metadata.json").read_bytes()
    result = cli("export", "--days", "30")
    assert result.exit_code == 1
    assert "no conversations in the last 30 days" in result.stderr
    assert (settings.export_dir / "metadata.json").read_bytes() == before


def test_missing_store_and_bad_days(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(MiltonError, match="memory import"):
        export_training_data(settings.memory_db, tmp_path, 30)
    with pytest.raises(MiltonError, match="positive"):
        export_training_data(settings.memory_db, tmp_path, 0)


def test_documented_command_lines_on_imported_history(home: Path, tmp_path: Path) -> None:
    """The three documented command lines, run as real processes on a store filled by the three importers."""
    from milton_lora.demo.samples import write_sample_exports

    for path in write_sample_exports(tmp_path / "samples", datetime.now(timezone.utc)).values():
        assert (
            run_subprocess(["python", "-m", "milton_lora", "memory", "import", str(path)], home, home).returncode == 0
        )
    script = str(REPO / "scripts" / "export_training_data.py")

    dry = run_subprocess(["python", script, "--days", "30", "--dry-run"], home, home)
    assert dry.returncode == 0, dry.stderr
    assert not (home / "training").exists()

    done = run_subprocess(["python", script, "--days", "30"], home, home)
    assert done.returncode == 0, done.stderr
    exported = home / "training" / "data" / "exported"
    train, test = read_jsonl(exported / "train.jsonl"), read_jsonl(exported / "test.jsonl")
    assert len(train) >= 10 and len(test) >= 1
    assert "[EMAIL]" in (exported / "train.jsonl").read_text() + (exported / "test.jsonl").read_text()

    custom = tmp_path / "custom"
    other = run_subprocess(["python", script, "--days", "30", "--output-dir", str(custom)], home, home)
    assert other.returncode == 0, other.stderr
    assert (custom / "train.jsonl").read_bytes() == (exported / "train.jsonl").read_bytes()

    review = run_subprocess(["python", script, "--days", "30", "--review"], home, home)
    assert review.returncode == 0, review.stderr
    assert "nothing written" in review.stdout and "[EMAIL]" in review.stdout


def _review_store(settings: Settings) -> None:
    with MemoryStore(settings.memory_db) as store:
        add(
            store,
            "r1",
            1,
            [("user", "I'm Hartmann, mail ann@example.com, pw is Fjord!Lamp77"), ("assistant", "Noted.")],
        )
        add(store, "r2", 1, [("user", "card 4111 1111 1111 1111 please"), ("assistant", "ok")])


def test_review_shows_each_redaction_in_context_and_writes_nothing(settings: Settings, cli) -> None:
    _review_store(settings)
    settings.redact_terms_path.write_text("always:\n  - Hartmann\n")
    result = cli("export", "--days", "3650", "--review")
    assert result.exit_code == 0, result.stderr
    assert "4 redactions in 4 messages of 2 conversations" in result.stdout
    for label in ("[CUSTOM]", "[EMAIL]", "[PASSWORD]", "[CREDIT_CARD]"):
        assert label in result.stdout
    # each finding is shown once, highlighted, beside the others already redacted
    assert "«ann@example.com»" in result.stdout and "mail [EMAIL], pw is «Fjord!Lamp77»" in result.stdout
    assert result.stdout.count("ann@example.com") == 1 and result.stdout.count("Fjord!Lamp77") == 1
    assert not settings.export_dir.exists()


def test_review_json_for_scripts(settings: Settings, cli) -> None:
    _review_store(settings)
    result = cli("export", "--days", "3650", "--review", "--json")
    assert result.exit_code == 0, result.stderr
    review = json.loads(result.stdout)
    assert review["counts"] == {"CREDIT_CARD": 1, "EMAIL": 1, "PASSWORD": 1}
    card = next(item for item in review["items"] if item["label"] == "CREDIT_CARD")
    assert card | {"conversation": "test:r2"} == {
        "conversation": "test:r2", "title": "r2", "message": 0, "role": "user", "label": "CREDIT_CARD",
        "value": "4111 1111 1111 1111", "before": "card ", "after": " please",
    }  # fmt: skip
    assert not settings.export_dir.exists()


def test_export_applies_redact_yaml(settings: Settings, cli) -> None:
    _review_store(settings)
    settings.redact_terms_path.write_text("always:\n  - text: Hartmann\n    label: FAMILY\n")
    assert cli("export", "--days", "3650").exit_code == 0
    exported = (settings.export_dir / "train.jsonl").read_text() + (settings.export_dir / "test.jsonl").read_text()
    assert "Hartmann" not in exported and "[FAMILY]" in exported and "Fjord!Lamp77" not in exported
    assert json.loads((settings.export_dir / "metadata.json").read_text())["redactions"]["FAMILY"] == 1
