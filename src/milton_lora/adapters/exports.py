"""`milton-lora adapter export`: one adapter out to another engine, recorded in the registry, and the
commands that run it there (`promote --serve-commands`).

Formats and where they go by default (`exports/<run_id>/` under MILTON_HOME; `--out` elsewhere):
- `gguf`: `<run_id>-<outtype>.gguf`, a GGUF LoRA for llama.cpp (`lora_gguf`);
- `ollama`: `ollama/` with that GGUF and a `Modelfile` (`ollama`, `ollama_template`);
- `merged`: `merged/`, a full Hugging Face model folder (`merged`).

Decisions:
- The adapter must be as evaluated: a registered adapter whose weights no longer match the registered
  sha256 is refused (the same integrity check as promotion). Unregistered folders export, unrecorded.
- The base model is the one training recorded (registry, then `metadata.json`, then peft's
  `adapter_config.json`) unless `--base-model` says otherwise. For llama.cpp and Ollama the base GGUF is
  the file `base fetch`/`base import` converted, when it is still there, else `--ollama-base`.
- An existing export is replaced only with `--force`; each export is written whole or not at all.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from milton_lora import __version__
from milton_lora.adapters.lora_gguf import OutType, write_gguf_lora
from milton_lora.adapters.merged import refuse_4bit, write_merged
from milton_lora.adapters.ollama import MODELFILE, modelfile, ollama_from
from milton_lora.base import source_gguf
from milton_lora.errors import MiltonError
from milton_lora.fileio import OWNER_DIR, OWNER_FILE, atomic_write_text, naming, sha256_file, sha256_tree
from milton_lora.record import peft_base_model, recorded_base_model
from milton_lora.registry import Entry, ExportRecord, Registry, now_iso
from milton_lora.settings import ADAPTER_WEIGHTS, Settings

Format = Literal["gguf", "ollama", "merged"]
FORMATS: tuple[Format, ...] = ("gguf", "ollama", "merged")


@dataclass(frozen=True)
class ExportRequest:
    run_id: str  # already resolved (Registry.resolve)
    format: Format
    out: Path | None = None
    outtype: OutType = "f16"
    ollama_base: str | None = None
    system: str | None = None
    base_model: Path | None = None
    force: bool = False


@dataclass(frozen=True)
class ExportResult:
    record: ExportRecord
    path: Path
    recorded: bool  # False for an adapter folder that is not in the registry
    notes: list[str]


def export_adapter(settings: Settings, registry: Registry, request: ExportRequest, cache_dir: Path) -> ExportResult:
    """Write one export of `request.run_id` and record it under the adapter's registry entry."""
    adapter_dir = registry.adapter_dir(request.run_id)
    entry = registry.load().adapters.get(request.run_id)
    if entry is not None:
        registry.check_integrity(entry)
    elif not (adapter_dir / ADAPTER_WEIGHTS).exists():
        raise MiltonError(f"{adapter_dir / ADAPTER_WEIGHTS}: missing; train the adapter first")
    base_dir = base_model_of(adapter_dir, entry, request.base_model)
    target = request.out.expanduser().resolve() if request.out else default_target(settings, request)
    if target.exists() and not request.force:
        raise MiltonError(f"{target}: exists; pass --force to replace this export, or --out elsewhere")
    base_gguf = source_gguf(base_dir, cache_dir)
    notes: list[str] = []
    if request.format == "gguf":
        _gguf(adapter_dir, base_dir, target, request, notes)
        base = str(base_gguf) if base_gguf else None
    elif request.format == "ollama":
        base = _ollama(adapter_dir, base_dir, target, request, base_gguf, notes)
    else:
        refuse_4bit(adapter_dir, base_dir)
        provenance = {"run_id": request.run_id, "adapter_sha256": sha256_file(adapter_dir / ADAPTER_WEIGHTS),
                      "base_model": str(base_dir), "created_at": now_iso(), "tool_version": __version__}  # fmt: skip
        with replaced_folder(target) as staging:
            write_merged(adapter_dir, base_dir, staging, provenance)
        base = None
    digest = sha256_file(target) if target.is_file() else sha256_tree(target)
    record = ExportRecord(format=request.format, path=registry.stored_path(target), sha256=digest,
                          created_at=now_iso(), outtype=None if request.format == "merged" else request.outtype,
                          base=base)  # fmt: skip
    if entry is not None:
        registry.record_export(request.run_id, record)
    return ExportResult(record, target, entry is not None, notes)


def default_target(settings: Settings, request: ExportRequest) -> Path:
    folder = settings.exports_dir / request.run_id
    if request.format == "gguf":
        return folder / f"{request.run_id}-{request.outtype}.gguf"
    return folder / request.format


def base_model_of(adapter_dir: Path, entry: Entry | None, override: Path | None) -> Path:
    """The base model folder: --base-model, else what training recorded, else peft's adapter_config.json."""
    candidates = [
        override.expanduser().resolve() if override else None,
        Path(entry.base_model_path) if entry and entry.base_model_path else None,
        _recorded_by_training(adapter_dir),
    ]
    base = next((path for path in candidates if path is not None), None)
    if base is None or not (base / "config.json").is_file():
        where = f"{base}: no config.json there" if base else f"{adapter_dir}: no base model recorded"
        raise MiltonError(f"{where}; pass --base-model DIR (the folder the adapter was trained on)")
    return base


def _recorded_by_training(adapter_dir: Path) -> Path | None:
    try:
        return recorded_base_model(adapter_dir)
    except MiltonError:  # a broken metadata.json: what peft recorded still names the base
        return peft_base_model(adapter_dir)


def _base_config(base_dir: Path) -> dict[str, Any]:
    return json.loads((base_dir / "config.json").read_text())


def _gguf(adapter_dir: Path, base_dir: Path, target: Path, request: ExportRequest, notes: list[str]) -> None:
    summary = write_gguf_lora(adapter_dir, _base_config(base_dir), target, request.outtype, request.run_id)
    if summary.kept_f16:
        notes.append(f"{summary.kept_f16} of {2 * summary.pairs} tensors stay f16 (rows not a multiple of 32)")


def _ollama(adapter_dir: Path, base_dir: Path, target: Path, request: ExportRequest, base_gguf: Path | None,
            notes: list[str]) -> str:  # fmt: skip
    """Write the Ollama folder; returns its FROM."""
    from milton_lora.adapters.ollama_template import translate
    from milton_lora.chat.prompts import stop_token_ids
    from milton_lora.chat.tokenizer import load_tokenizer

    chosen = request.ollama_base or (str(base_gguf) if base_gguf else None)
    if chosen is None:
        raise MiltonError(
            f"--ollama-base: name the base for Ollama, an Ollama model name or a GGUF file of the weights in "
            f"{base_dir} (it was not made by `milton-lora base fetch|import`, so its GGUF is unknown)"
        )
    from_ = ollama_from(chosen)
    tokenizer = load_tokenizer(base_dir)
    stops = [tokenizer.convert_ids_to_tokens(i) for i in stop_token_ids(tokenizer, saved_generation_config(base_dir))]
    turns = translate(tokenizer, stops, f"{base_dir} (chat template)")
    adapter_file = f"{request.run_id}-{request.outtype}.gguf"
    about = f"milton-lora adapter {request.run_id} on {base_dir}, exported by milton-lora {__version__}"
    text = modelfile(from_, adapter_file, turns, stops, request.system, about)
    with replaced_folder(target) as staging:
        _gguf(adapter_dir, base_dir, staging / adapter_file, request, notes)
        atomic_write_text(staging / MODELFILE, text)
    notes.append(f"chat template: {turns.family}; stop tokens: {', '.join(stops)}")
    return from_


@contextmanager
def replaced_folder(target: Path) -> Iterator[Path]:
    """An empty staging folder that becomes `target` once the block succeeds, replacing an earlier export
    there; a failed block leaves the earlier export as it was."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(
        dir=target.parent, prefix=f".{target.name}.{os.getpid()}.", suffix=".staging"
    ) as tmp:
        staging = Path(tmp) / target.name
        staging.mkdir()
        with naming(target):
            yield staging
        for path in staging.rglob("*"):
            # Owner-only like the rest of the home (the adapter's weights hold private text); `ollama create`
            # uploads the files through its client, so the server's own user needs no access.
            path.chmod(OWNER_DIR if path.is_dir() else OWNER_FILE)
        if target.exists():
            shutil.rmtree(target)
        os.rename(staging, target)


def saved_generation_config(base_dir: Path) -> Any:
    """The base's `generation_config.json` (its eos ids are stop tokens too); None without one."""
    if not (base_dir / "generation_config.json").exists():
        return None
    from transformers import GenerationConfig

    return GenerationConfig.from_pretrained(base_dir)
