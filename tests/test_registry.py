"""Registry: every transition, the confirmation prompt, rollback chains, vLLM checks, locking and kill-safety."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import PYTHON, REPO
from milton_lora.errors import MiltonError
from milton_lora.registry import Registry, validate_run_id
from milton_lora.settings import Settings
from milton_lora.vllm_rules import check_vllm_compatible


def make_adapter(model_dir: Path, adapters_dir: Path, run_id: str, **lora: object) -> Path:
    """A real peft LoRA adapter on the tiny model, saved the way training saves it."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    options = {"r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"], "bias": "none", **lora}
    peft_model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **options))
    peft_model.save_pretrained(adapters_dir / run_id)
    return adapters_dir / run_id


@pytest.fixture
def registry(settings: Settings) -> Registry:
    return Registry.of(settings)


@pytest.fixture
def adapters(tiny_model_dir: Path, settings: Settings, registry: Registry) -> list[str]:
    """Three registered candidates A, B, C."""
    run_ids = ["lora_20261101_000001", "lora_20261101_000002", "lora_20261101_000003"]
    for index, run_id in enumerate(run_ids):
        make_adapter(tiny_model_dir, settings.adapters_dir, run_id)
        registry.register(run_id, str(tiny_model_dir), "test")
        metrics = {"perplexity": 10.0 + index, "eval_loss": 2.3, "token_accuracy": 0.4}
        registry.record_evaluation(run_id, metrics, 0.95, promote=True, command="test")
    return run_ids


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def answer(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", FakeTty(text))


def statuses(registry: Registry) -> dict[str, str]:
    return {run_id: e.status for run_id, e in registry.load().adapters.items()}


def test_lifecycle_and_history(registry: Registry, adapters: list[str], cli) -> None:
    a, b, _ = adapters
    assert set(statuses(registry).values()) == {"candidate"}
    assert cli("promote", a, "--to-production", "--force").exit_code == 0
    assert cli("promote", b, "--to-production", "--force").exit_code == 0
    assert statuses(registry)[a] == "archived" and statuses(registry)[b] == "production"
    history = [(t.from_status, t.to_status) for t in registry.get(a).history]
    assert history == [(None, "training"), ("training", "candidate"), ("candidate", "production"),
                       ("production", "archived")]  # fmt: skip
    assert cli("promote", b, "--archive").exit_code == 0
    assert registry.load().production() is None
    raw = json.loads(registry.path.read_text())
    assert raw["adapters"][a]["history"][-1]["from"] == "production"


def test_confirmation_prompt(registry: Registry, adapters: list[str], cli, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, _ = adapters
    answer(monkeypatch, "n\n")
    refused = cli("promote", a, "--to-production")
    assert refused.exit_code == 1 and "aborted" in refused.stderr
    assert "Proceed? [y/N]:" in refused.stdout and "Perplexity:       10.000" in refused.stdout
    assert statuses(registry)[a] == "candidate"

    answer(monkeypatch, "\n")
    assert cli("promote", a, "--to-production").exit_code == 1

    answer(monkeypatch, "yes\n")
    accepted = cli("promote", a, "--to-production")
    assert accepted.exit_code == 0 and statuses(registry)[a] == "production"

    answer(monkeypatch, "y\n")
    block = cli("promote", b, "--to-production")
    assert f"Current production: {a} (will be archived)" in block.stdout
    assert "Task pass rate:   95.0%" in block.stdout


def test_no_tty_refuses_without_force(registry: Registry, adapters: list[str], cli) -> None:
    result = cli("promote", adapters[0], "--to-production", stdin="y\n")
    assert result.exit_code == 1 and "--force" in result.stderr
    assert statuses(registry)[adapters[0]] == "candidate"


def test_unevaluated_needs_force(tiny_model_dir: Path, settings: Settings, registry: Registry, cli) -> None:
    make_adapter(tiny_model_dir, settings.adapters_dir, "fresh")
    registry.register("fresh", None, "test")
    result = cli("promote", "fresh", "--to-production")
    assert result.exit_code == 1 and "has not passed evaluation" in result.stderr and "--force" in result.stderr
    assert cli("promote", "fresh", "--to-production", "--force").exit_code == 0


def test_rollback_chain(registry: Registry, adapters: list[str], cli) -> None:
    a, b, c = adapters
    assert "nothing to roll back to" in cli("promote", "--rollback", "--force").stderr
    for run_id in adapters:
        assert cli("promote", run_id, "--to-production", "--force").exit_code == 0
    first = cli("promote", "--rollback", "--force")
    assert first.exit_code == 0 and f"{c} → {b}" in first.stdout
    assert statuses(registry) == {a: "archived", b: "production", c: "archived"}
    assert cli("promote", "--rollback", "--force").exit_code == 0
    assert statuses(registry) == {a: "production", b: "archived", c: "archived"}
    last = cli("promote", "--rollback", "--force")
    assert last.exit_code == 1 and "nothing to roll back to" in last.stderr


def test_list_table_and_json(registry: Registry, adapters: list[str], cli) -> None:
    cli("promote", adapters[1], "--to-production", "--force")
    rows = json.loads(cli("promote", "--list", "--json").stdout)
    assert [r["run_id"] for r in rows] == adapters
    assert [r["is_production"] for r in rows] == [False, True, False]
    assert set(rows[0]) == {"run_id", "status", "created_at", "pass_rate", "is_production", "note", "tainted"}
    table = cli("promote", "--list").stdout
    assert "★ production" in table and "95.0%" in table


def test_not_found_hints_evaluation(registry: Registry, tiny_model_dir: Path, settings: Settings, cli) -> None:
    missing = cli("promote", "lora_20990101_000000", "--to-production")
    assert missing.exit_code == 1
    assert (
        "not found in registry" in missing.stderr and "milton-lora eval --run-id lora_20990101_000000" in missing.stderr
    )
    make_adapter(tiny_model_dir, settings.adapters_dir, "orphan")
    assert "its folder exists" in cli("promote", "orphan", "--archive").stderr


def test_integrity_and_vllm_checks(registry: Registry, adapters: list[str], tiny_model_dir: Path,
                                   settings: Settings, cli) -> None:  # fmt: skip
    a = adapters[0]
    weights = settings.adapters_dir / a / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes() + b" ")
    assert "sha256 differs" in cli("promote", a, "--to-production", "--force").stderr

    for run_id, options, problem in [
        ("dora", {"use_dora": True}, "DoRA"),
        ("bias", {"bias": "lora_only"}, "bias"),
        ("saved", {"modules_to_save": ["lm_head"]}, "modules_to_save"),
        ("wide", {"r": 128, "lora_alpha": 256}, "max LoRA rank 64"),
    ]:
        with pytest.raises(MiltonError, match=problem):
            check_vllm_compatible(make_adapter(tiny_model_dir, settings.adapters_dir, run_id, **options), 64)
    check_vllm_compatible(settings.adapters_dir / adapters[1], 64)


@pytest.mark.parametrize("bad", ["../etc", "a/b", "..", "x/../../y", "", ".hidden"])
def test_run_ids_cannot_escape(bad: str, cli) -> None:
    with pytest.raises(MiltonError, match="not a valid run id"):
        validate_run_id(bad)
    assert cli("promote", bad, "--archive").exit_code == 1


def test_corrupt_registry_is_reported_not_overwritten(registry: Registry, adapters: list[str], cli) -> None:
    registry.path.write_text('{"adapters": {"x": ')
    result = cli("promote", adapters[0], "--to-production", "--force")
    assert result.exit_code == 1 and str(registry.path) in result.stderr and "not a readable registry" in result.stderr
    assert registry.path.read_text() == '{"adapters": {"x": '


PROMOTE = str(REPO / "scripts" / "promote_adapter.py")


def test_concurrent_promotions_leave_one_production(registry: Registry, adapters: list[str], home: Path) -> None:
    procs = [
        subprocess.Popen(
            [PYTHON, PROMOTE, run_id, "--to-production", "--force"],
            cwd=home, env={**os.environ, "MILTON_HOME": str(home)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for run_id in adapters
    ]  # fmt: skip
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    final = statuses(registry)
    assert sorted(final.values()) == ["archived", "archived", "production"]
    assert len(registry.load().production_stack) == 3


KILL_LOOP = """
import sys
from milton_lora.registry import Registry
from pathlib import Path
home = Path(sys.argv[1])
registry = Registry(home / "models" / "registry.json", home / "adapters", home / "runs")
def promote(run_id):
    if registry.get(run_id).status != "production":
        registry.promote_to_production(run_id, True, 64, "kill-test")

promote(sys.argv[2])
print("ready", flush=True)
while True:
    for run_id in sys.argv[2:]:
        promote(run_id)
"""


def test_kill_mid_write_leaves_a_valid_registry(registry: Registry, adapters: list[str], home: Path) -> None:
    for attempt in range(5):
        proc = subprocess.Popen(
            [PYTHON, "-c", KILL_LOOP, str(home), *adapters],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        )  # fmt: skip
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.3 + 0.17 * attempt)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
        data = registry.load()
        assert sum(e.status == "production" for e in data.adapters.values()) == 1


def test_notes_and_history_survive_a_reload(registry: Registry, adapters: list[str], settings: Settings, cli) -> None:
    a, b, _ = adapters
    assert cli("promote", a, "--to-production", "--force", "--note", "knows the Tuesday standup").exit_code == 0
    assert cli("promote", b, "--to-production", "--force").exit_code == 0
    assert cli("promote", "--rollback", "--force", "--note", "B forgot the dog's name").exit_code == 0

    reloaded = Registry.of(Settings.from_env(settings.home))  # a fresh object reading the file
    whos = {t.who for _, t in reloaded.history()}
    assert whos == {registry.who} and registry.who
    a_history = reloaded.history(a)
    assert [t.to_status for _, t in a_history] == ["training", "candidate", "production", "archived", "production"]
    assert a_history[2][1].note == "knows the Tuesday standup" and a_history[-1][1].note == "B forgot the dog's name"

    shown = cli("promote", "--history", "--json")
    records = json.loads(shown.stdout)
    assert [r["run_id"] for r in records].count(b) == 4
    assert {"at", "from", "to", "who", "note", "reason"} <= set(records[-1])
    assert records == sorted(records, key=lambda r: r["at"])
    table = cli("promote", a, "--history")
    assert table.exit_code == 0 and "B forgot the dog's name" in table.stdout and registry.who in table.stdout
    listed = {row["run_id"]: row["note"] for row in json.loads(cli("promote", "--list", "--json").stdout)}
    assert listed[a] == "B forgot the dog's name" and listed[b] == "B forgot the dog's name"
    assert "Tuesday" not in cli("promote", "--list").stdout  # the latest note only


def test_run_id_aliases_and_suggestions(registry: Registry, adapters: list[str], cli) -> None:
    a, b, c = adapters
    assert registry.resolve("latest") == c and registry.resolve("latest-candidate") == c
    with pytest.raises(MiltonError, match="no adapter is in production"):
        registry.resolve("production")
    assert cli("promote", "latest-candidate", "--to-production", "--force").exit_code == 0
    assert registry.resolve("production") == c and registry.resolve("latest-candidate") == b
    assert cli("promote", "production", "--archive").exit_code == 0
    assert statuses(registry)[c] == "archived"

    typo = cli("promote", "lora_20261101_00003", "--to-production")
    assert typo.exit_code == 1
    assert f"closest, newest first: {c}, {b}, {a}" in typo.stderr and "Traceback" not in typo.stderr


def test_latest_resolves_for_eval_and_report(trained_home: Path, tmp_path: Path, cli) -> None:
    from helpers import copy_home

    home = copy_home(trained_home, tmp_path / "home")
    (run_id,) = [p.name for p in (home / "adapters").iterdir()]
    planned = cli("--home", str(home), "eval", "--run-id", "latest", "--dry-run")
    assert planned.exit_code == 0 and run_id in planned.stdout
    cli("--home", str(home), "promote", "latest", "--archive", "--note", "kept for the record")
    report = cli("--home", str(home), "report", "latest")
    assert report.exit_code == 0, report.stderr
    assert "kept for the record" in (home / "runs" / run_id / "report.html").read_text()


def test_tainted_adapters_are_never_promoted_and_rollback_passes_them(
    registry: Registry, adapters: list[str], cli
) -> None:
    a, b, c = adapters
    for run_id in adapters:
        assert cli("promote", run_id, "--to-production", "--force").exit_code == 0
    registry.mark_tainted({b: 1, c: 2}, "memory forget: learned a forgotten conversation")
    assert registry.newest_untainted(exclude=c).run_id == a
    refused = cli("promote", b, "--to-production", "--force")
    assert refused.exit_code == 1 and f"{b} is tainted" in refused.stderr
    table = cli("promote", "--list")
    assert "(tainted)" in table.stdout and "tainted:" in table.stdout  # status and note columns
    back = cli("promote", "--rollback", "--force")
    assert back.exit_code == 0 and f"{c} → {a}" in back.stdout
