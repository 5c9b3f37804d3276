"""The rule `.ci/run` enforces (`.ci/skip_guard.py`): a skipped test fails CI unless it is marked `gpu`, and
every skip is listed with its reason. Checked on small real pytest runs in a temporary folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import REPO

PASSING = "def test_passes():\n    assert True\n"
GPU_SKIP = (
    "import pytest\n\n@pytest.mark.gpu\ndef test_needs_cuda():\n    pytest.skip('CUDA is not available')\n"
)  # fmt: skip
PLAIN_SKIP = "import pytest\n\ndef test_needs_a_tool():\n    pytest.skip('the widget tool is not installed')\n"
MODULE_SKIP = "import pytest\n\npytest.importorskip('no_such_module_for_the_guard')\n\ndef test_x():\n    pass\n"


def _run_guarded(folder: Path, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
    folder.mkdir()
    (folder / "pytest.ini").write_text("[pytest]\nmarkers =\n    gpu: needs a CUDA GPU\n")
    for name, text in files.items():
        (folder / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env["PYTHONPATH"] = str(REPO / ".ci")
    command = [sys.executable, "-m", "pytest", "-p", "skip_guard", "--skips-allowed-for", "gpu", "-p",
               "no:cacheprovider", "--strict-markers", str(folder)]  # fmt: skip
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120)


def test_a_skipped_test_without_the_gpu_marker_fails_the_run_and_is_named(tmp_path: Path) -> None:
    done = _run_guarded(tmp_path / "run", {"test_ok.py": PASSING, "test_gpu.py": GPU_SKIP, "test_tool.py": PLAIN_SKIP})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "NOT ALLOWED  test_tool.py::test_needs_a_tool: the widget tool is not installed" in done.stdout
    assert "allowed  test_gpu.py::test_needs_cuda: CUDA is not available" in done.stdout


def test_only_gpu_marked_skips_pass_and_are_still_listed(tmp_path: Path) -> None:
    done = _run_guarded(tmp_path / "run", {"test_ok.py": PASSING, "test_gpu.py": GPU_SKIP})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped (allowed only when marked: gpu)" in done.stdout
    assert "test_gpu.py::test_needs_cuda: CUDA is not available" in done.stdout


def test_a_module_skipped_at_collection_fails_the_run(tmp_path: Path) -> None:
    done = _run_guarded(tmp_path / "run", {"test_ok.py": PASSING, "test_missing.py": MODULE_SKIP})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "NOT ALLOWED  test_missing.py: could not import 'no_such_module_for_the_guard'" in done.stdout


def test_a_failure_and_an_empty_run_keep_pytest_s_own_status(tmp_path: Path) -> None:
    failing = "def test_fails():\n    assert False\n"
    assert _run_guarded(tmp_path / "failing", {"test_bad.py": failing, "test_tool.py": PLAIN_SKIP}).returncode == 1
    empty = _run_guarded(tmp_path / "empty", {"test_none.py": "VALUE = 1\n"})
    assert empty.returncode == 5, empty.stdout + empty.stderr
