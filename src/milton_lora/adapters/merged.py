"""Base model + adapter merged into one Hugging Face folder, for engines that cannot load a LoRA adapter:
the merged weights (safetensors), the base's tokenizer with its chat template, and a generation config
whose end-of-sequence ids are every end-of-turn token, so the merged model stops where the adapter does.

Decisions:
- An adapter trained on a 4-bit base (QLoRA), or a base folder that is itself 4-bit, is refused: merging
  into 4-bit weights rounds most of the adapter's change away, and merging into the 16-bit weights makes
  a model the adapter was never trained against. Such adapters are served as adapters.
- Weights keep the base's dtype; peft's safe merge refuses a merge that produces NaN or inf.
- The caller gives an empty staging folder that it renames into place when this succeeds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from milton_lora.errors import MiltonError
from milton_lora.fileio import atomic_write_json
from milton_lora.record import read_record

PROVENANCE = "milton_export.json"


def refuse_4bit(adapter_dir: Path, base_dir: Path) -> None:
    """Raise when the adapter was trained on a 4-bit base or the base folder holds 4-bit weights."""
    record = read_record(adapter_dir)
    if record is not None and record.config_value("load_in_4bit"):
        raise MiltonError(
            f"{adapter_dir}: trained on a 4-bit base (load_in_4bit: true); merging into 4-bit weights rounds "
            "the adapter's change away and merging into the 16-bit base gives a model it was not trained "
            "against; serve it as an adapter instead (--format gguf or ollama, or vLLM)"
        )
    quantization = _json_or_empty(base_dir / "config.json").get("quantization_config") or {}
    if quantization.get("load_in_4bit") or quantization.get("bits") == 4:
        raise MiltonError(
            f"{base_dir}: a 4-bit base (quantization_config); merging into 4-bit weights rounds the adapter's "
            "change away; merge into the full-precision base (--base-model DIR) or serve the adapter as is"
        )


def write_merged(adapter_dir: Path, base_dir: Path, folder: Path, provenance: dict[str, Any]) -> None:
    """Merge and save into the empty `folder`."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from milton_lora.chat.prompts import stop_token_ids
    from milton_lora.libraries import quiet_libraries

    refuse_4bit(adapter_dir, base_dir)
    quiet_libraries()
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype="auto")
    with torch.no_grad():
        merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload(safe_merge=True)
    stops = stop_token_ids(tokenizer, merged.generation_config)
    merged.generation_config.eos_token_id = stops
    if merged.generation_config.pad_token_id is None and tokenizer.pad_token_id is not None:
        merged.generation_config.pad_token_id = tokenizer.pad_token_id
    merged.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    atomic_write_json(folder / PROVENANCE, {**provenance, "eos_token_id": stops})


def _json_or_empty(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
