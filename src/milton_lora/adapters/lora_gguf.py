"""A peft LoRA adapter as a GGUF LoRA file that llama.cpp (`llama-server --lora`, `llama-cli --lora`) and
Ollama (`ADAPTER`) load next to a GGUF of the same base model.

What llama.cpp's loader (`src/llama-adapter.cpp`) checks, and its converter (`convert_lora_to_gguf.py`) writes:
- metadata `general.type = adapter`, `general.architecture` equal to the base GGUF's (else "model arch and
  LoRA arch mismatch"), `adapter.type = lora`, `adapter.lora.alpha` (float32);
- per adapted weight `<gguf name>` (e.g. `blk.3.attn_q.weight`) the pair `<gguf name>.lora_a` = peft's
  lora_A (rank x in) and `<gguf name>.lora_b` = lora_B (out x rank), in numpy order and not transposed: the
  loader wants a.ne[0] == in, b.ne[1] == out, a.ne[1] == b.ne[0], and scales each pair by alpha / rank, the
  rank read from lora_b;
- Llama-family GGUFs keep the rows of the q and k projections permuted for llama.cpp's rotary layout, so
  lora_b of q_proj and k_proj gets the same row permutation (lora_a is untouched).

Tensor names come from the gguf package's own HF → GGUF tables (`gguf.get_tensor_name_map`); only the
model_type → GGUF architecture pairs below are ours, as llama.cpp's converter registers them.

Decisions:
- peft's scale per module (alpha / r; alpha / sqrt(r) with rslora; rank_pattern and alpha_pattern) is
  reproduced exactly: where it differs from llama.cpp's alpha / rank, the difference is folded into lora_b.
- Refused with the reason: DoRA (no magnitude vectors in llama.cpp), LoRA biases, `modules_to_save` (full
  weights), adapters on embed_tokens / lm_head, and base architectures not in the table.
- `q8_0` quantizes the tensors whose rows are a multiple of 32 values; the others (every lora_b, whose rows
  are `rank` long, unless the rank is a multiple of 32) stay f16, as llama.cpp's converter does.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from milton_lora.errors import MiltonError
from milton_lora.fileio import atomic_path
from milton_lora.settings import ADAPTER_CONFIG, ADAPTER_WEIGHTS

OutType = Literal["f16", "f32", "q8_0"]
OUT_TYPES: tuple[OutType, ...] = ("f16", "f32", "q8_0")
_PEFT_PREFIX = "base_model.model."


@dataclass(frozen=True)
class GgufArchitecture:
    name: str  # gguf.MODEL_ARCH member name
    rope_permuted: bool  # q/k rows are stored permuted (llama.cpp's LlamaModel converter)


# HF model_type -> how llama.cpp's convert_hf_to_gguf.py writes that family.
ARCHITECTURES: dict[str, GgufArchitecture] = {
    "llama": GgufArchitecture("LLAMA", rope_permuted=True),
    "mistral": GgufArchitecture("LLAMA", rope_permuted=True),
    "qwen2": GgufArchitecture("QWEN2", rope_permuted=False),
    "qwen3": GgufArchitecture("QWEN3", rope_permuted=False),
    "gemma": GgufArchitecture("GEMMA", rope_permuted=False),
    "gemma2": GgufArchitecture("GEMMA2", rope_permuted=False),
    "gemma3_text": GgufArchitecture("GEMMA3", rope_permuted=False),
}


@dataclass(frozen=True)
class GgufSummary:
    """What was written: the file, the GGUF architecture, alpha, LoRA pairs, and the pairs kept at f16."""

    path: Path
    architecture: str
    alpha: float
    pairs: int
    kept_f16: int


@dataclass(frozen=True)
class LoraPair:
    module: str  # the adapted module, as the base model names it: model.layers.0.self_attn.q_proj
    a: np.ndarray  # rank x in
    b: np.ndarray  # out x rank


def write_gguf_lora(adapter_dir: Path, base_config: dict[str, Any], out: Path, outtype: OutType,
                    name: str) -> GgufSummary:  # fmt: skip
    """Convert `adapter_dir` (peft files) into a GGUF LoRA at `out` (written atomically)."""
    import gguf

    architecture = architecture_of(base_config)
    config = _adapter_config(adapter_dir)
    pairs = read_lora_pairs(adapter_dir, config)
    alpha = float(config["lora_alpha"])
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH[architecture.name], int(base_config["num_hidden_layers"]))
    tensors: list[tuple[str, np.ndarray]] = []
    for pair in pairs:
        target = name_map.get_name(pair.module + ".weight", try_suffixes=(".weight",))
        if target is None:
            raise MiltonError(
                f"{adapter_dir}: module {pair.module} has no tensor in llama.cpp's {architecture.name.lower()} "
                "architecture; retrain without it in target_modules"
            )
        b = pair.b * _scale_correction(config, pair, alpha)
        if architecture.rope_permuted:
            b = _rope_permuted(b, pair.module, base_config)
        tensors += [(target + ".lora_a", pair.a), (target + ".lora_b", b)]
    kept_f16 = _write(out, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH[architecture.name]], tensors, alpha, outtype, name)
    return GgufSummary(out, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH[architecture.name]], alpha, len(pairs), kept_f16)


def architecture_of(base_config: dict[str, Any]) -> GgufArchitecture:
    model_type = str(base_config.get("model_type", "?"))
    if model_type not in ARCHITECTURES:
        known = ", ".join(sorted(ARCHITECTURES))
        raise MiltonError(f"GGUF export: base model type '{model_type}' is not supported (supported: {known})")
    return ARCHITECTURES[model_type]


def _adapter_config(adapter_dir: Path) -> dict[str, Any]:
    path = adapter_dir / ADAPTER_CONFIG
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MiltonError(f"{path}: not a readable peft adapter config ({exc})") from None
    refusals = [
        (config.get("peft_type", "LORA") != "LORA", f"peft_type {config.get('peft_type')} is not LoRA"),
        (bool(config.get("use_dora")), "DoRA adapters have magnitude vectors llama.cpp cannot apply"),
        (config.get("bias", "none") != "none" or bool(config.get("lora_bias")), "LoRA biases are not supported"),
        (bool(config.get("modules_to_save")), "modules_to_save holds full weights, not LoRA pairs"),
    ]
    for refused, why in refusals:
        if refused:
            raise MiltonError(f"{path}: cannot export to GGUF: {why}; retrain with the shipped configs")
    return config


def read_lora_pairs(adapter_dir: Path, config: dict[str, Any]) -> list[LoraPair]:
    """Every (lora_A, lora_B) pair of `adapter_model.safetensors`, as float32 arrays, in file order."""
    from safetensors.torch import load_file

    path = adapter_dir / ADAPTER_WEIGHTS
    if not path.exists():
        raise MiltonError(f"{path}: missing; train the adapter first")
    halves: dict[str, dict[str, np.ndarray]] = {}
    for key, tensor in load_file(str(path)).items():
        module, half = _split_key(path, key)
        halves.setdefault(module, {})[half] = tensor.float().numpy()
    pairs = []
    for module, found in halves.items():
        if set(found) != {"A", "B"}:
            raise MiltonError(f"{path}: {module} has lora_{''.join(found)} without its partner")
        pairs.append(LoraPair(module, found["A"], found["B"]))
    if not pairs:
        raise MiltonError(f"{path}: holds no LoRA weights")
    return pairs


def _split_key(path: Path, key: str) -> tuple[str, str]:
    """`base_model.model.model.layers.0.mlp.up_proj.lora_A.weight` -> (`model.layers.0.mlp.up_proj`, `A`)."""
    for half in ("A", "B"):
        marker = f".lora_{half}.weight"
        if key.endswith(marker):
            module = key.removeprefix(_PEFT_PREFIX)[: -len(marker)]
            if module.split(".")[-1] in ("embed_tokens", "lm_head"):
                raise MiltonError(
                    f"{path}: {module} is adapted; llama.cpp ignores LoRA on a tied output layer, so this "
                    "export would silently differ; retrain without embed_tokens/lm_head in target_modules"
                )
            return module, half
    why = "a full weight, not a LoRA pair" if "embed" in key or "lm_head" in key else "not a lora_A/lora_B weight"
    raise MiltonError(f"{path}: tensor {key} is {why}; cannot export it to GGUF")


def _scale_correction(config: dict[str, Any], pair: LoraPair, alpha: float) -> float:
    """Factor on lora_b so that llama.cpp's alpha / rank equals peft's scale for this module."""
    from peft.utils.other import get_pattern_key

    rank = pair.a.shape[0]
    module_alpha = float(config["lora_alpha"])
    patterns = config.get("alpha_pattern") or {}
    if patterns:
        module_alpha = float(patterns.get(get_pattern_key(patterns.keys(), pair.module), module_alpha))
    peft_scale = module_alpha / math.sqrt(rank) if config.get("use_rslora") else module_alpha / rank
    return 1.0 if math.isclose(peft_scale, alpha / rank, rel_tol=1e-12) else peft_scale * rank / alpha


def _rope_permuted(b: np.ndarray, module: str, base_config: dict[str, Any]) -> np.ndarray:
    """lora_b rows in the order llama.cpp's converter stores q_proj/k_proj rows (per head: evens, then odds)."""
    leaf = module.split(".")[-1]
    if leaf not in ("q_proj", "k_proj"):
        return b
    heads = int(base_config["num_attention_heads"])
    if leaf == "k_proj":
        heads = int(base_config.get("num_key_value_heads") or heads)
    rows = b.shape[0]
    return b.reshape(heads, 2, rows // heads // 2, *b.shape[1:]).swapaxes(1, 2).reshape(b.shape)


def _write(out: Path, arch: str, tensors: list[tuple[str, np.ndarray]], alpha: float, outtype: OutType,
           name: str) -> int:  # fmt: skip
    """Write the GGUF file; returns how many tensors stayed f16 under q8_0."""
    import gguf

    qtype = {"f32": gguf.GGMLQuantizationType.F32, "f16": gguf.GGMLQuantizationType.F16,
             "q8_0": gguf.GGMLQuantizationType.Q8_0}[outtype]  # fmt: skip
    file_type = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                 "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[outtype]  # fmt: skip
    kept_f16 = 0
    with atomic_path(out) as partial:
        writer = gguf.GGUFWriter(partial, arch)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_name(name)
        writer.add_file_type(int(file_type))
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        for tensor_name, data in tensors:
            try:
                encoded, used = gguf.quants.quantize(np.ascontiguousarray(data, dtype=np.float32), qtype), qtype
            except gguf.QuantError:
                encoded, used = data.astype(np.float16), gguf.GGMLQuantizationType.F16
                kept_f16 += 1
            writer.add_tensor(tensor_name, encoded, raw_dtype=used)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return kept_f16
