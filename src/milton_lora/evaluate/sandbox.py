"""Run model-written Python in a sandbox: its own process and temp dir, limits, no network, no inherited env.

Layers, each tested:
- a separate process in a new session, killed (whole group) at the wall-clock timeout;
- `setrlimit` on address space (memory), CPU seconds, file size, open files and process count;
- `python -I -S`: isolated mode ignores PYTHON* variables and user site-packages; the environment is
  replaced by a minimal one, so no secret of the parent leaks in;
- an audit hook installed before the code runs refuses sockets and spawning processes; audit hooks
  cannot be removed from inside the interpreter;
- a fresh temp directory as cwd and HOME, deleted afterwards.
This is a guard against accidents and casual escapes by a small model's code, not a boundary for
hostile code: for that, run the evaluation inside a container or VM.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

_GUARD = r"""
import sys

_BLOCKED = ("socket.", "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.fork", "os.spawn",
            "pty.spawn", "ctypes.dlopen")


def _deny(event, args):
    if event.startswith(_BLOCKED):
        raise PermissionError(f"sandbox: {event} is not allowed")


sys.addaudithook(_deny)
del _deny
import runpy

sys.argv = ["main.py"]
runpy.run_path("main.py", run_name="__main__")
"""


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 10.0
    cpu_s: int = 5
    memory_mb: int = 512
    max_output_bytes: int = 64_000
    max_file_mb: int = 16


@dataclass
class SandboxResult:
    stdout: str
    stderr: str
    returncode: int | None
    timed_out: bool

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def run_python(code: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run `code` as a script under the limits; never raises for anything the code does."""
    limits = limits or SandboxLimits()
    with tempfile.TemporaryDirectory(prefix="milton-sandbox-") as workdir:
        Path(workdir, "main.py").write_text(code)
        Path(workdir, "guard.py").write_text(_GUARD)
        env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8"}
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", "guard.py"],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=lambda: _apply_limits(limits),
        )
        try:
            out, err = process.communicate(timeout=limits.timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            timed_out = True
    cap = limits.max_output_bytes
    return SandboxResult(
        out[:cap].decode(errors="replace"), err[:cap].decode(errors="replace"), process.returncode, timed_out
    )


def _apply_limits(limits: SandboxLimits) -> None:
    memory = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
    file_size = limits.max_file_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
