"""Helpers shared by tests that run real processes: the repository root and a subprocess runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from milton_lora.registry import Registry
from milton_lora.settings import Settings

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def run_subprocess(
    args: list[str], cwd: Path, env_home: Path | None = None, stdin: str | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run a real process (a documented script or `python -m milton_lora`) with MILTON_HOME set.

    A leading "python" means this interpreter, so the test uses the project's virtualenv.
    """
    args = [PYTHON if i == 0 and a == "python" else a for i, a in enumerate(args)]
    env = dict(os.environ)
    if env_home is not None:
        env["MILTON_HOME"] = str(env_home)
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(args, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=timeout)


def registry_of(home: Path) -> Registry:
    """The registry of a MILTON_HOME, as the CLI opens it."""
    return Registry.of(Settings.from_env(home))


def copy_home(source: Path, target: Path) -> Path:
    """A private copy of a prepared MILTON_HOME (the registry stores paths relative to its home)."""
    shutil.copytree(source, target, dirs_exist_ok=True)
    return target
