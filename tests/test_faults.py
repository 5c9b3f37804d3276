"""Commands under faults and hostile files, for real: a full disk (RLIMIT_FSIZE in a subprocess), a read-only
home (a read-only bind mount, which stops root too), a backtracking regex in redact.yaml, a YAML alias bomb,
target_modules that match nothing, two trainings in one second, and what a killed command leaves behind."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from helpers import PYTHON, REPO, copy_home, run_subprocess
from milton_lora.memory import Conversation, MemoryStore, Message

FILE_LIMIT = 65536  # bytes: more than SQLite's shared memory file, less than the export below


def milton(home: Path, *args: str, file_limit: int | None = None, read_only: bool = False,
           timeout: float = 300) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """`milton-lora ARGS` as a process on `home`: with a file size limit, or with `home` mounted read-only."""
    command = [PYTHON, "-m", "milton_lora", *args]
    if read_only:  # a private mount namespace: the read-only bind is seen by this process only
        command = ["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(home), *command]

    def limit() -> None:
        if file_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    env = {**os.environ, "MILTON_HOME": str(home), "PYTHONPATH": str(REPO / "src"), "MILTON_SERVE_API_KEY": ""}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, preexec_fn=limit)


def one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stderr.startswith("error: "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr


def add_conversations(home: Path, texts: list[str]) -> None:
    now = datetime.now(timezone.utc)
    with MemoryStore(home / "memory" / "milton.db") as store, store.transaction():
        for k, text in enumerate(texts):
            turns = [Message("user", text, now), Message("assistant", f"noted {k}: {text}", now)]
            store.insert_conversation(Conversation("test", f"fault{k}", "fault", now, turns))


@pytest.fixture
def faulty_home(trained_home: Path, tmp_path: Path) -> Path:
    return copy_home(trained_home, tmp_path / "home")


def test_disk_full_during_export_is_one_line_and_keeps_the_old_export(faulty_home: Path) -> None:
    add_conversations(faulty_home, [f"tell me about garden {k} " * 300 for k in range(12)])
    exported = faulty_home / "training/data/exported/train.jsonl"
    before = exported.read_bytes()
    result = milton(faulty_home, "export", "--days", "30", file_limit=FILE_LIMIT)
    one_line_error(result, "no space left writing", str(exported))
    assert exported.read_bytes() == before
    assert not [p for p in exported.parent.iterdir() if p.name.endswith(".tmp")]


def test_disk_full_while_saving_weights_is_one_line(faulty_home: Path) -> None:
    result = milton(faulty_home, "adapter", "export", "latest", "--format", "merged", file_limit=FILE_LIMIT)
    one_line_error(result, "no space left writing", "merged")
    assert not any(p.name.endswith(".staging") for p in (faulty_home / "exports").rglob("*"))


def _can_mount_read_only(tmp_path: Path) -> bool:
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f'mount --bind -o ro "{tmp_path}" "{tmp_path}"'],
                           capture_output=True)  # fmt: skip
    return probe.returncode == 0


@pytest.mark.parametrize(
    "args",
    [("export", "--days", "30"), ("promote", "latest", "--to-production", "--force"), ("cycle",),
     ("server", "start", "--timeout", "20"), ("report", "latest")],
)  # fmt: skip
def test_a_read_only_home_is_one_line_for_every_command(faulty_home: Path, args: tuple[str, ...]) -> None:
    """Root ignores file modes, so the home is made read-only the way a full-disk remount or a read-only
    volume would: a read-only bind mount, in a mount namespace of the command's own."""
    if not _can_mount_read_only(faulty_home):
        pytest.skip("needs unshare and mount (root in a container that allows mount namespaces)")
    result = milton(faulty_home, *args, read_only=True)
    one_line_error(result, str(faulty_home))
    assert "writable" in result.stderr


def test_a_backtracking_redact_regex_stops_with_its_name(faulty_home: Path) -> None:
    (faulty_home / "redact.yaml").write_text(yaml.safe_dump({"always": [{"regex": "(a+)+$", "label": "SLOW"}]}))
    add_conversations(faulty_home, ["a" * 5000 + "!"])
    result = milton(faulty_home, "export", "--days", "30", timeout=120)
    one_line_error(result, "redact.yaml", "'(a+)+$'", "nested repetition")


BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)


def test_a_yaml_alias_bomb_is_refused_in_one_short_line(faulty_home: Path) -> None:
    (faulty_home / "redact.yaml").write_text(BOMB)
    result = milton(faulty_home, "export", "--days", "30")
    one_line_error(result, "redact.yaml", "aliases")
    assert len(result.stderr) < 500


def test_target_modules_matching_nothing_fail_the_dry_run(faulty_home: Path) -> None:
    config = yaml.safe_load((faulty_home / "training/configs/lora_light.yaml").read_text())
    (faulty_home / "training/configs/typo.yaml").write_text(yaml.safe_dump({**config, "target_modules": ["qproj"]}))
    result = milton(faulty_home, "train", "--config", "typo.yaml", "--dry-run")
    one_line_error(result, "target_modules ['qproj'] match no linear layer", "q_proj")
    assert not [p for p in (faulty_home / "runs").iterdir() if p.name.startswith("lora_") and not any(p.iterdir())]


def test_two_trainings_in_one_second_get_their_own_run_ids(tmp_path: Path) -> None:
    from milton_lora.train.checks import claim_run_id

    runs, now = tmp_path / "runs", datetime(2026, 12, 4, 9, 30, 0)
    first = claim_run_id("lora", [tmp_path / "adapters", runs], runs, now)
    second = claim_run_id("lora", [tmp_path / "adapters", runs], runs, now)  # same second, the first not written
    assert (first, second) == ("lora_20261204_093000", "lora_20261204_093001")
    assert (runs / first).is_dir() and (runs / second).is_dir()


def test_a_killed_commands_temp_files_go_on_the_next_run(faulty_home: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    exported, adapters = faulty_home / "training/data/exported", faulty_home / "adapters"
    left = [
        exported / f".train.jsonl.{gone.pid}.k2j3h4.tmp",
        adapters / f".lora_20261204_010203.{gone.pid}.x9y8.staging",
    ]
    live = exported / f".test.jsonl.{os.getpid()}.a1b2c3.tmp"  # a command still running: kept
    left[0].write_text("half a line")
    (left[1] / "nested").mkdir(parents=True)
    live.write_text("being written")
    assert (
        run_subprocess(["python", "-m", "milton_lora", "promote", "--list"], faulty_home, faulty_home).returncode == 0
    )
    assert not any(path.exists() for path in left) and live.exists()


def test_a_killed_cycle_is_marked_on_the_next_run(faulty_home: Path) -> None:
    # enough history that the export stage takes seconds: the kill lands while the cycle runs, not after it failed
    add_conversations(faulty_home, [f"tell me about garden {k} " * 2000 for k in range(400)])
    env = {**os.environ, "MILTON_HOME": str(faulty_home), "PYTHONPATH": str(REPO / "src")}
    cycle = subprocess.Popen([PYTHON, "-m", "milton_lora", "cycle"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)  # fmt: skip
    cycles = faulty_home / "runs" / "cycles"
    deadline = time.time() + 120
    while not list(cycles.glob("cycle_*.json")) and time.time() < deadline:
        assert cycle.poll() is None
        time.sleep(0.05)
    os.kill(cycle.pid, signal.SIGKILL)
    cycle.wait()
    (killed,) = cycles.glob("cycle_*.json")
    assert json.loads(killed.read_text())["status"] == "running"
    (faulty_home / "memory" / "milton.db").unlink()  # the next cycle fails at once, at export
    again = run_subprocess(["python", "-m", "milton_lora", "cycle"], faulty_home, faulty_home)
    assert again.returncode == 1
    log = json.loads(killed.read_text())
    assert log["status"] == "failed" and log["error"].startswith(f"killed: pid {cycle.pid}")
    assert [s["status"] for s in log["stages"]][-1] == "failed"
