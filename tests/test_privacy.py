"""Private by default: a home made by the CLI is owner-only whatever the umask; `health` finds and fixes
looser modes."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from helpers import PYTHON, REPO
from milton_lora.demo.samples import write_sample_exports
from milton_lora.fileio import loose_modes, make_private
from milton_lora.memory import MemoryStore


def milton(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`milton-lora ARGS` as a real process started under a permissive umask (022), as a shell would."""
    env = {**os.environ, "MILTON_HOME": str(home), "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        [PYTHON, "-m", "milton_lora", *args], env=env, capture_output=True, text=True, timeout=300,
        preexec_fn=lambda: os.umask(0o022),
    )  # fmt: skip


def modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def test_a_home_made_by_the_cli_is_owner_only_under_a_permissive_umask(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    home = tmp_path / "home"
    assert milton(home, "init").returncode == 0
    for path in write_sample_exports(tmp_path / "samples", datetime.now(timezone.utc)).values():
        assert milton(home, "memory", "import", str(path)).returncode == 0
    assert milton(home, "export", "--days", "30").returncode == 0
    found = modes(home)
    assert "memory/milton.db" in found and "training/data/exported/train.jsonl" in found
    loose = {name: oct(mode) for name, mode in found.items() if mode & 0o077}
    assert not loose, f"readable by others: {loose}"
    assert found["training/data/exported"] == 0o700 and found["training/data/exported/train.jsonl"] == 0o600
    result = milton(home, "health")
    assert result.returncode == 0 and "private" in result.stdout


def test_health_warns_about_a_loose_home_and_fix_makes_it_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert milton(home, "init").returncode == 0
    (home / "memory").chmod(0o755)
    (home / "memory" / "milton.db").chmod(0o644)
    (home / "redact.yaml").chmod(0o666)
    warned = milton(home, "health")
    assert warned.returncode == 1
    assert "3 path(s)" in warned.stdout and "redact.yaml" in warned.stdout and "health --fix" in warned.stdout
    fixed = milton(home, "health", "--fix")
    assert fixed.returncode == 0 and "3 path(s) tightened" in fixed.stdout
    assert stat.S_IMODE((home / "memory").stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "redact.yaml").stat().st_mode) == 0o600
    assert milton(home, "health").returncode == 0


def test_make_private_keeps_the_owners_bits_and_leaves_symlinks_alone(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    outside.chmod(0o644)
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin").chmod(0o755)
    (root / "bin" / "tool").write_text("#!/bin/sh\n")
    (root / "bin" / "tool").chmod(0o755)
    (root / "link").symlink_to(outside)
    assert set(make_private(root)) >= {root / "bin", root / "bin" / "tool"}
    assert stat.S_IMODE((root / "bin" / "tool").stat().st_mode) == 0o700
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644
    assert loose_modes(root) == []


def test_the_store_is_owner_only_when_a_library_caller_opens_it(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with MemoryStore(tmp_path / "m" / "milton.db"):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m" / "milton.db").stat().st_mode) == 0o600
