"""Shared fixtures: a tiny model built once per session, a throwaway MILTON_HOME, and a CLI runner."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from milton_lora.cli import main
from milton_lora.settings import Settings
from milton_lora.tiny_model import build_tiny_model


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("MILTON_HOME", str(root))
    return root


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings.from_env(home)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], home: Path) -> Callable[..., CliResult]:
    """Run the CLI in-process, the way `milton-lora ARGS` would, and capture its output."""

    def run(*args: str, stdin: str | None = None) -> CliResult:
        capsys.readouterr()
        old_stdin = sys.stdin
        if stdin is not None:
            import io

            sys.stdin = io.StringIO(stdin)
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        finally:
            sys.stdin = old_stdin
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run
