"""`milton-lora adapter export`: GGUF LoRA tensors that mean what peft's mean, the merged folder, the
registry record of each export, and `promote --serve-commands`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from helpers import copy_home, registry_of
from milton_lora.adapters.lora_gguf import write_gguf_lora


def _random_adapter(tmp_path: Path, config: Any, **lora: Any) -> tuple[Any, Path]:
    """A tiny random base of `config`'s architecture with a random (non-zero) LoRA on every linear layer."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_config(config)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    settings = {"r": 4, "lora_alpha": 8, "target_modules": targets, "init_lora_weights": False, **lora}
    model = get_peft_model(base, LoraConfig(**settings))
    adapter_dir = tmp_path / "adapter"
    model.save_pretrained(adapter_dir)
    return model, adapter_dir


def _configs() -> dict[str, Any]:
    from transformers import Gemma2Config, LlamaConfig, Qwen2Config

    shape = {"hidden_size": 64, "intermediate_size": 80, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "vocab_size": 128, "head_dim": 16}  # fmt: skip
    return {"llama": LlamaConfig(**shape), "qwen2": Qwen2Config(**shape), "gemma2": Gemma2Config(**shape)}


def _gguf_tensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    import gguf

    reader = gguf.GGUFReader(path)
    tensors = {t.name: gguf.quants.dequantize(t.data, t.tensor_type) for t in reader.tensors}
    fields = {name: field.contents() for name, field in reader.fields.items() if not name.startswith("GGUF.")}
    return tensors, fields


def _llama_cpp_row_order(weight: np.ndarray, heads: int) -> np.ndarray:
    """Rows as llama.cpp stores a rotary projection: within each head, row 2i is HF row i and row 2i+1 is
    HF row i + head_dim/2 (HF rotates halves, llama.cpp neighbouring pairs)."""
    head_dim = weight.shape[0] // heads
    order = [h * head_dim + (i // 2) + (i % 2) * (head_dim // 2) for h in range(heads) for i in range(head_dim)]
    return weight[order]


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma2"])
def test_gguf_lora_pairs_reproduce_peft_deltas(arch: str, tmp_path: Path) -> None:
    """For every adapted weight, alpha/rank * lora_b @ lora_a in the GGUF is peft's delta, rows in llama.cpp's
    order, under the tensor name gguf's own table gives that weight."""
    import gguf

    config = _configs()[arch]
    model, adapter_dir = _random_adapter(tmp_path, config)
    summary = write_gguf_lora(adapter_dir, config.to_dict(), tmp_path / "a.gguf", "f32", "probe")
    tensors, fields = _gguf_tensors(summary.path)
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == 8.0 and fields["general.architecture"] == arch
    gguf_arch = next(a for a, name in gguf.MODEL_ARCH_NAMES.items() if name == arch)
    allowed = {gguf.TENSOR_NAMES[t].format(bid=b) + ".weight" for t in gguf.MODEL_TENSORS[gguf_arch] for b in (0, 1)}
    names = {
        "q_proj": gguf.MODEL_TENSOR.ATTN_Q, "k_proj": gguf.MODEL_TENSOR.ATTN_K, "v_proj": gguf.MODEL_TENSOR.ATTN_V,
        "o_proj": gguf.MODEL_TENSOR.ATTN_OUT, "gate_proj": gguf.MODEL_TENSOR.FFN_GATE,
        "up_proj": gguf.MODEL_TENSOR.FFN_UP, "down_proj": gguf.MODEL_TENSOR.FFN_DOWN,
    }  # fmt: skip
    checked = 0
    for module_name, module in model.named_modules():
        leaf = module_name.split(".")[-1]
        if leaf not in names or not hasattr(module, "get_delta_weight"):
            continue
        block = int(module_name.split(".layers.")[1].split(".")[0])
        target = gguf.TENSOR_NAMES[names[leaf]].format(bid=block) + ".weight"
        assert target in allowed
        a, b = tensors[target + ".lora_a"], tensors[target + ".lora_b"]
        assert a.shape == (4, module.in_features) and b.shape == (module.out_features, 4)
        expected = module.get_delta_weight("default").detach().numpy()
        if arch == "llama" and leaf in ("q_proj", "k_proj"):
            heads = config.num_attention_heads if leaf == "q_proj" else config.num_key_value_heads
            expected = _llama_cpp_row_order(expected, heads)
        np.testing.assert_allclose(8.0 / 4 * b @ a, expected, rtol=1e-5, atol=1e-6)
        checked += 1
    assert checked == 14 == summary.pairs


def test_rslora_and_alpha_patterns_are_folded_into_lora_b(tmp_path: Path) -> None:
    config = _configs()["qwen2"]
    model, adapter_dir = _random_adapter(tmp_path, config, use_rslora=True, alpha_pattern={"down_proj": 32})
    summary = write_gguf_lora(adapter_dir, config.to_dict(), tmp_path / "a.gguf", "f32", "probe")
    tensors, _ = _gguf_tensors(summary.path)
    down = model.base_model.model.model.layers[1].mlp.down_proj
    q = model.base_model.model.model.layers[0].self_attn.q_proj
    for module, name in ((down, "blk.1.ffn_down.weight"), (q, "blk.0.attn_q.weight")):
        delta = 8.0 / 4 * tensors[name + ".lora_b"] @ tensors[name + ".lora_a"]  # what llama.cpp applies
        np.testing.assert_allclose(delta, module.get_delta_weight("default").detach().numpy(), rtol=1e-5, atol=1e-6)


def test_q8_0_quantizes_what_fits_and_keeps_short_rows_f16(tmp_path: Path) -> None:
    import gguf

    config = _configs()["llama"]
    _, adapter_dir = _random_adapter(tmp_path, config)
    summary = write_gguf_lora(adapter_dir, config.to_dict(), tmp_path / "q.gguf", "q8_0", "probe")
    types = {t.name: t.tensor_type for t in gguf.GGUFReader(summary.path).tensors}
    assert types["blk.0.attn_q.weight.lora_a"] == gguf.GGMLQuantizationType.Q8_0  # rows of 64
    assert types["blk.0.ffn_down.weight.lora_a"] == gguf.GGMLQuantizationType.F16  # rows of 80
    assert all(types[n] == gguf.GGMLQuantizationType.F16 for n in types if n.endswith(".lora_b"))  # rows of rank 4
    assert summary.kept_f16 == 14 + 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"use_dora": True}, "DoRA"),
        ({"modules_to_save": ["lm_head"]}, "modules_to_save holds full weights"),
        ({"bias": "lora_only"}, "LoRA biases"),
    ],
)
def test_adapters_llama_cpp_cannot_apply_are_refused(tmp_path: Path, change: dict, message: str) -> None:
    from milton_lora.errors import MiltonError

    config = _configs()["llama"]
    _, adapter_dir = _random_adapter(tmp_path, config)
    path = adapter_dir / "adapter_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(MiltonError, match=message):
        write_gguf_lora(adapter_dir, config.to_dict(), tmp_path / "x.gguf", "f16", "x")
    assert not (tmp_path / "x.gguf").exists()


def test_unknown_architecture_and_embedding_targets_are_refused(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from milton_lora.errors import MiltonError

    config = _configs()["llama"]
    _, adapter_dir = _random_adapter(tmp_path, config)
    with pytest.raises(MiltonError, match="base model type 'gpt_neox' is not supported"):
        write_gguf_lora(adapter_dir, {**config.to_dict(), "model_type": "gpt_neox"}, tmp_path / "x.gguf", "f16", "x")
    weights = adapter_dir / "adapter_model.safetensors"
    tensors = load_file(str(weights))
    tensors["base_model.model.lm_head.lora_A.weight"] = torch.zeros(4, 64)
    tensors["base_model.model.lm_head.lora_B.weight"] = torch.zeros(128, 4)
    save_file(tensors, str(weights))
    with pytest.raises(MiltonError, match="lm_head is adapted"):
        write_gguf_lora(adapter_dir, config.to_dict(), tmp_path / "x.gguf", "f16", "x")


# --- the command, the registry and the other formats, on the trained tiny adapter ---------------------------


@pytest.fixture
def exported_home(trained_home: Path, tmp_path: Path) -> Path:
    return copy_home(trained_home, tmp_path / "trained")


@pytest.fixture
def run(exported_home: Path, cli) -> Any:
    """The CLI in the copied trained home."""
    return lambda *args: cli("--home", str(exported_home), *args)


def test_gguf_export_is_recorded_and_served_by_promote(exported_home: Path, run) -> None:
    result = run("adapter", "export", "latest", "--format", "gguf")
    assert result.exit_code == 0, result.stderr
    registry = registry_of(exported_home)
    entry = registry.get(registry.resolve("latest"))
    path = exported_home / "exports" / entry.run_id / f"{entry.run_id}-f16.gguf"
    [record] = entry.exports
    assert (record.format, record.path, record.outtype) == ("gguf", str(path.relative_to(exported_home)), "f16")
    from milton_lora.fileio import sha256_file

    assert record.sha256 == sha256_file(path) and f"--lora {path}" in result.stdout
    again = run("adapter", "export", "latest", "--format", "gguf")
    assert again.exit_code == 1 and "exists; pass --force" in again.stderr
    assert run("adapter", "export", "latest", "--format", "gguf", "--force").exit_code == 0
    assert len(registry.get(entry.run_id).exports) == 1  # same path: replaced, not duplicated
    commands = run("promote", entry.run_id, "--serve-commands")
    assert commands.exit_code == 0 and f"llama-server -m BASE.gguf --lora {path}" in commands.stdout
    path.write_bytes(path.read_bytes() + b"\0")
    assert "changed since it was exported; re-export it" in run("promote", entry.run_id, "--serve-commands").stdout
    nothing = run("promote", "--serve-commands")
    assert nothing.exit_code == 1 and "no adapter is in production" in nothing.stderr


def test_export_refuses_an_adapter_changed_after_registration(exported_home: Path, run) -> None:
    registry = registry_of(exported_home)
    run_id = registry.resolve("latest")
    weights = registry.adapter_dir(run_id) / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    result = run("adapter", "export", run_id, "--format", "gguf")
    assert result.exit_code == 1 and "sha256 differs from the registry's" in result.stderr
    assert not (exported_home / "exports").exists()


def test_export_flags_are_checked_before_any_work(exported_home: Path, run) -> None:
    assert "choose one of gguf, ollama, merged" in run("adapter", "export", "latest", "--format", "onnx").stderr
    assert "choose one of f16, f32, q8_0" in run("adapter", "export", "latest", "--format", "gguf", "--outtype",
                                                   "q4_k").stderr  # fmt: skip
    assert "go with --format ollama" in run("adapter", "export", "latest", "--format", "gguf", "--system", "x").stderr
    unknown = run("adapter", "export", "lora_19990101_000000", "--format", "gguf")
    assert unknown.exit_code == 1 and "no adapter lora_19990101_000000" in unknown.stderr


def test_ollama_export_writes_a_modelfile_next_to_the_gguf(exported_home: Path, run, tmp_path: Path) -> None:
    missing = run("adapter", "export", "latest", "--format", "ollama")
    assert missing.exit_code == 1 and "--ollama-base: name the base for Ollama" in missing.stderr
    base_gguf = tmp_path / "tiny.gguf"
    base_gguf.write_bytes(b"GGUF")
    result = run("adapter", "export", "latest", "--format", "ollama", "--ollama-base", str(base_gguf),
                 "--system", "You are Milton.")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    run_id = registry_of(exported_home).resolve("latest")
    folder = exported_home / "exports" / run_id / "ollama"
    text = (folder / "Modelfile").read_text()
    assert f"FROM {base_gguf}\nADAPTER ./{run_id}-f16.gguf\n" in text
    assert 'PARAMETER stop "<|eot_id|>"' in text and 'PARAMETER stop "<|end_of_text|>"' in text
    assert text.endswith('SYSTEM """You are Milton."""\n') and "Llama 3 chat template" in text
    assert (folder / f"{run_id}-f16.gguf").read_bytes()[:4] == b"GGUF"
    assert f"ollama create milton -f {folder / 'Modelfile'}" in result.stdout
    [record] = registry_of(exported_home).get(run_id).exports
    assert (record.format, record.base) == ("ollama", str(base_gguf))


def test_merged_folder_generates_like_base_plus_adapter(exported_home: Path, run) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result = run("adapter", "export", "latest", "--format", "merged")
    assert result.exit_code == 0, result.stderr
    registry = registry_of(exported_home)
    run_id = registry.resolve("latest")
    folder = exported_home / "exports" / run_id / "merged"
    base_dir = Path(registry.get(run_id).base_model_path or "")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer.chat_template == AutoTokenizer.from_pretrained(base_dir).chat_template
    merged = AutoModelForCausalLM.from_pretrained(folder)
    assert tokenizer.convert_tokens_to_ids("<|eot_id|>") in merged.generation_config.eos_token_id
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), registry.adapter_dir(run_id))
    ids = torch.tensor([tokenizer.apply_chat_template([{"role": "user", "content": "Brief me"}], tokenize=True,
                                                      add_generation_prompt=True)["input_ids"]])  # fmt: skip
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, reference(ids).logits, rtol=1e-4, atol=1e-4)
    assert json.loads((folder / "milton_export.json").read_text())["run_id"] == run_id


def test_merging_into_4bit_weights_is_refused_with_the_reason(exported_home: Path, run) -> None:
    registry = registry_of(exported_home)
    run_id = registry.resolve("latest")
    metadata = registry.adapter_dir(run_id) / "metadata.json"
    record = json.loads(metadata.read_text())
    metadata.write_text(json.dumps({**record, "config": {**record["config"], "load_in_4bit": True}}))
    result = run("adapter", "export", run_id, "--format", "merged")
    assert result.exit_code == 1 and "trained on a 4-bit base" in result.stderr
    assert "rounds the adapter's change away" in result.stderr
    assert not (exported_home / "exports" / run_id / "merged").exists()


def test_a_registry_written_before_exports_existed_still_loads(exported_home: Path) -> None:
    registry = registry_of(exported_home)
    data = json.loads(registry.path.read_text())
    for entry in data["adapters"].values():
        entry.pop("exports", None)
    registry.path.write_text(json.dumps(data))
    assert all(entry.exports == [] for entry in registry.load().adapters.values())
