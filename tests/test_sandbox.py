"""The sandbox for model-written code: each limit is proven by code that tries to break it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from milton_lora.evaluate.sandbox import SandboxLimits, run_python

FAST = SandboxLimits(timeout_s=3, cpu_s=1, memory_mb=256)


def test_runs_ordinary_code() -> None:
    result = run_python("print(sum(range(101)))", FAST)
    assert result.ok and result.stdout.strip() == "5050"


def test_wall_clock_timeout_kills_the_process_group() -> None:
    result = run_python("import time\ntime.sleep(30)", SandboxLimits(timeout_s=1))
    assert result.timed_out and not result.ok


def test_cpu_limit() -> None:
    result = run_python("while True:\n    pass", SandboxLimits(timeout_s=20, cpu_s=1))
    assert not result.timed_out and result.returncode is not None and result.returncode < 0  # SIGXCPU


def test_memory_limit() -> None:
    result = run_python("x = bytearray(1024 ** 3)\nprint('allocated')", FAST)
    assert not result.ok and "MemoryError" in result.stderr and "allocated" not in result.stdout


@pytest.mark.parametrize(
    "code",
    [
        "import socket\nsocket.create_connection(('127.0.0.1', 80), timeout=1)",
        "import urllib.request\nurllib.request.urlopen('http://example.com', timeout=1)",
    ],
)
def test_no_network(code: str) -> None:
    result = run_python(code, FAST)
    assert not result.ok and "sandbox: socket" in result.stderr


@pytest.mark.parametrize(
    "code", ["import subprocess\nsubprocess.run(['ls'])", "import os\nos.system('ls')", "import os\nos.fork()"]
)
def test_no_child_processes(code: str) -> None:
    result = run_python(code, FAST)
    assert not result.ok and "is not allowed" in result.stderr


def test_environment_is_stripped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    result = run_python("import os\nprint(sorted(os.environ))\nprint(os.environ.get('OPENAI_API_KEY'))", FAST)
    assert result.ok and "sk-should-not-leak" not in result.stdout and "OPENAI_API_KEY" not in result.stdout


def test_runs_in_a_fresh_temp_dir_that_is_removed() -> None:
    result = run_python("import os\nopen('scratch.txt', 'w').write('x')\nprint(os.getcwd())", FAST)
    workdir = Path(result.stdout.strip())
    assert result.ok and workdir != Path(os.getcwd()) and not workdir.exists()


def test_output_is_capped() -> None:
    result = run_python("print('x' * 1_000_000)", SandboxLimits(max_output_bytes=1000))
    assert len(result.stdout) == 1000
