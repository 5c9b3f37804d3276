"""`milton-lora init` and the installed package: a wheel built from this checkout works in a fresh virtual
environment, away from the checkout, without the network."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from helpers import REPO
from milton_lora.config import ServeConfig, TrainConfig, load_model
from milton_lora.settings import Settings

HOME_FILES = [
    "training/configs/lora_light.yaml", "training/configs/lora_default.yaml", "training/configs/lora_heavy.yaml",
    "training/configs/lora_dpo.yaml", "training/configs/lora_kto.yaml", "training/configs/serve.yaml",
    "training/eval/sanity_prompts.yaml", "training/eval/benchmarks.yaml",
    "redact.yaml", "memory/milton.db",
]  # fmt: skip


def test_init_creates_a_home_whose_files_load(cli, tmp_path: Path, tiny_model_dir: Path) -> None:
    home = tmp_path / "milton"
    result = cli("init", str(home), "--base-model", str(tiny_model_dir))
    assert result.exit_code == 0, result.stderr
    assert all((home / name).is_file() for name in HOME_FILES)
    assert all(f"created {name}" in result.stdout for name in HOME_FILES)
    for name in ("lora_light.yaml", "lora_default.yaml", "lora_heavy.yaml", "lora_dpo.yaml", "lora_kto.yaml"):
        config = load_model(home / "training/configs" / name, TrainConfig)
        assert Path(config.base_model_path) == tiny_model_dir.resolve()
    assert load_model(home / "training/configs/serve.yaml", ServeConfig) == ServeConfig()
    assert yaml.safe_load((home / "redact.yaml").read_text()) == {"always": [], "never": []}
    assert "milton-lora train --config lora_default.yaml --dry-run" in result.stdout
    assert "base fetch" not in result.stdout  # the base model is already set


def test_init_never_overwrites_and_adds_what_is_missing(cli, tmp_path: Path) -> None:
    home = tmp_path / "milton"
    assert cli("--home", str(home), "init").exit_code == 0
    mine = home / "training/configs/lora_default.yaml"
    mine.write_text("base_model_path: /my/model\n")
    (home / "redact.yaml").unlink()
    again = cli("--home", str(home), "init")
    assert again.exit_code == 0
    assert mine.read_text() == "base_model_path: /my/model\n"
    assert "kept    training/configs/lora_default.yaml (exists)" in again.stdout
    assert "created redact.yaml" in again.stdout and (home / "redact.yaml").exists()
    assert "milton-lora base fetch smollm2-135m" in again.stdout


def test_init_refuses_a_base_model_folder_without_config(cli, tmp_path: Path) -> None:
    result = cli("init", str(tmp_path / "milton"), "--base-model", str(tmp_path))
    assert result.exit_code == 1 and "no config.json there" in result.stderr
    assert not (tmp_path / "milton").exists()


def _fresh_venv_reusing_these_packages(tmp_path: Path) -> Path:
    """A new virtual environment without pip or packages of its own; a .pth file appends this interpreter's
    site-packages (its own entries first, so what is installed into it wins, and .pth files of the shared
    site-packages, such as an editable install of this checkout, are not run)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    shared = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (Path(site) / "shared_dependencies.pth").write_text("".join(f"{path}\n" for path in shared))
    return venv


@pytest.mark.slow
def test_the_wheel_runs_init_and_a_dry_run_in_a_fresh_environment(tmp_path: Path, tiny_model_dir: Path) -> None:
    source = tmp_path / "source"  # built from a copy, so the build writes nothing into the checkout
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    offline = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "COLUMNS": "300"}
    offline.pop("PYTHONPATH", None)
    offline.pop("MILTON_HOME", None)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, env=offline, timeout=600)  # fmt: skip
    [wheel] = (tmp_path / "dist").glob("milton_lora-*.whl")
    venv = _fresh_venv_reusing_these_packages(tmp_path)
    python, tool = venv / "bin" / "python", venv / "bin" / "milton-lora"
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)], check=True, env=offline,
                   timeout=600)  # fmt: skip
    work = tmp_path / "elsewhere"
    work.mkdir()

    def run(*args: str | Path) -> str:
        done = subprocess.run([str(a) for a in args], cwd=work, env=offline, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done.stdout

    where = run(python, "-c", "import milton_lora, milton_lora.settings as s; print(milton_lora.__file__); "
                "print(s.checkout_scripts_dir())")  # fmt: skip
    assert where.splitlines() == [str(next(venv.glob("lib/python*/site-packages")) / "milton_lora/__init__.py"),
                                  "None"]  # fmt: skip
    home = work / "home"
    assert "Next:" in run(tool, "init", home, "--base-model", tiny_model_dir)
    write_samples = ("import datetime as d, pathlib; from milton_lora.demo.samples import write_sample_exports; "
                     "paths = write_sample_exports(pathlib.Path('samples'), d.datetime.now(d.timezone.utc)); "
                     "print(*paths.values(), sep=chr(10))")  # fmt: skip
    samples = run(python, "-c", write_samples)
    for path in samples.split():
        run(tool, "--home", home, "memory", "import", path)
    run(tool, "--home", home, "export", "--days", "30")
    plan = run(tool, "--home", home, "train", "--config", "lora_light.yaml", "--dry-run")
    # the home's lora_light.yaml, where init wrote the base model
    assert "dry run: nothing trained" in plan and str(tiny_model_dir.resolve()) in plan and "r=8 alpha=16" in plan
    assert not Settings(home).adapters_dir.exists()
