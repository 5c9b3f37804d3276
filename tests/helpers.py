"""Helpers shared by tests that run real processes: the repository root, a subprocess runner and the
embedded server as a real process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai

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


def second_adapter(home: Path, run_id: str, name: str) -> str:
    """A second registered adapter: the first one's with lora_B zeroed, so it answers exactly like the base."""
    from safetensors.torch import load_file, save_file

    target = home / "adapters" / name
    copy_home(home / "adapters" / run_id, target)
    tensors = {k: (v * 0 if "lora_B" in k else v) for k, v in load_file(target / "adapter_model.safetensors").items()}
    save_file(tensors, target / "adapter_model.safetensors")
    registry_of(home).register(name, None, "test")
    return name


def promote(home: Path, run_id: str) -> subprocess.CompletedProcess[str]:
    result = run_subprocess(["python", "-m", "milton_lora", "promote", run_id, "--to-production", "--force"], home,
                            home)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result


def promoted_copy(trained_home: Path, target: Path) -> tuple[Path, str]:
    """A private copy of the trained home with its adapter in production: (home, run id)."""
    home = copy_home(trained_home, target)
    (run_id,) = [p.name for p in (home / "adapters").iterdir()]
    promote(home, run_id)
    return home, run_id


def admin_headers(home: Path) -> dict[str, str]:
    """What the hot swap sends: the running server's admin key, from its state file."""
    state = json.loads((home / "runs" / "server" / "state.json").read_text())
    return {"Authorization": f"Bearer {state['admin_key']}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`milton-lora serve` as a real process on a home, until stopped; `timeout` bounds start-up and requests."""

    def __init__(self, home: Path, port: int, env: dict[str, str], timeout: float = 120):
        self.home, self.port, self.url, self.timeout = home, port, f"http://127.0.0.1:{port}", timeout
        self.process = subprocess.Popen(
            [PYTHON, "-m", "milton_lora", "serve", "--port", str(port)],
            env={**os.environ, "MILTON_HOME": str(home), "PYTHONPATH": str(REPO / "src"), **env},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.process.poll() is None, self.process.stdout.read() if self.process.stdout else ""
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("server did not start")

    def client(self, key: str = "unused") -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, timeout=self.timeout)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
