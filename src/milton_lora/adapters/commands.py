"""The commands that run an exported adapter elsewhere: llama.cpp for a GGUF LoRA, Ollama for a Modelfile
folder, any Hugging Face engine for a merged folder. Printed after `adapter export` and by
`promote --serve-commands` (the production adapter's exports, checked against their recorded sha256).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from milton_lora.adapters.ollama import MODELFILE
from milton_lora.fileio import sha256_file, sha256_tree
from milton_lora.registry import Entry, ExportRecord, Registry

OLLAMA_NAME = "milton"


def commands_for(record: ExportRecord, path: Path) -> list[str]:
    """Shell lines (comments start with #) that serve one export."""
    if record.format == "gguf":
        base = shlex.quote(record.base) if record.base else "BASE.gguf"
        lines = [f"llama-server -m {base} --lora {shlex.quote(str(path))}",
                 f"llama-cli -m {base} --lora {shlex.quote(str(path))} -cnv"]  # fmt: skip
        if record.base is None:
            lines.insert(0, "# BASE.gguf: a GGUF of the exact base weights the adapter was trained on")
        return lines
    if record.format == "ollama":
        return [f"ollama create {OLLAMA_NAME} -f {shlex.quote(str(path / MODELFILE))}", f"ollama run {OLLAMA_NAME}"]
    return [f"vllm serve {shlex.quote(str(path))}   # or any engine that loads a Hugging Face model folder"]


def serve_commands(registry: Registry, entry: Entry) -> list[str]:
    """For the latest export of each format: its commands, or why it cannot be used as recorded."""
    lines = [f"# {entry.run_id} ({entry.status})"]
    for fmt in ("gguf", "ollama", "merged"):
        record = entry.latest_export(fmt)
        if record is None:
            continue
        path = registry.path_of(record.path)
        problem = _problem(record, path)
        lines += [f"# {fmt}: {problem}; re-export it"] if problem else [f"# {fmt}", *commands_for(record, path)]
    if len(lines) == 1:
        lines.append(f"# no exports yet: milton-lora adapter export {entry.run_id} --format gguf (or ollama, merged)")
    return lines


def _problem(record: ExportRecord, path: Path) -> str | None:
    if not path.exists():
        return f"{path} is gone"
    actual = sha256_file(path) if path.is_file() else sha256_tree(path)
    return None if actual == record.sha256 else f"{path} changed since it was exported"
