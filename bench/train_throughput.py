"""Training throughput: milton-lora's trainer vs a plain TRL SFTTrainer as a typical user writes it.

Both train the same locally built model on the same synthetic, long-tailed chat data (many short
turns, some long pasted-code turns) with the same LoRA, learning rate, schedule and number of epochs,
one after the other in child processes (so each one's peak RSS is its own). Printed side by side:
non-pad tokens/s, the ratio, eval loss on the same held-out split computed the same way (assistant
tokens only, `milton_lora.evaluate.metrics`), peak RSS, and MFU against the fp32 matmul peak measured
in this run.

Same epochs rather than same step count: a packed step holds several conversations, so equal steps
would hand our trainer more data. MFU counts 4 x parameters FLOPs per token (forward, plus the
backward pass through frozen base weights; LoRA's own FLOPs and attention are left out).

    .venv/bin/python bench/train_throughput.py [--conversations 400] [--size small]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = (  # noqa: SIM905
    "the a to and of in it you that for is on with this can be I we have at do not your what will "
    "meeting tomorrow remind call email project budget review draft plan trip flight hotel dinner "
    "weather report code function error test deploy server database query install update version "
    "please thanks sure here is summary list schedule morning afternoon evening week month today "
).split()
CODE = [
    "def handler(event, context):", "    result = process(event['body'])", "    return {'status': 200}",
    "for item in items:", "    total += item.price * item.quantity", "import json, os, sys",
    "class Config(BaseModel):", "    timeout: int = 30", "SELECT id, name FROM users WHERE active = 1;",
    "Traceback (most recent call last):", '  File "app.py", line 42, in main', "KeyError: 'user_id'",
]  # fmt: skip
MAX_LENGTH = 1024


def sentence(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))).capitalize() + "."


def conversation(rng: random.Random) -> list[dict[str, str]]:
    messages = []
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4])):
        if rng.random() < 0.12:  # a pasted stack trace or file
            code = "\n".join(rng.choice(CODE) for _ in range(rng.randint(20, 70)))
            messages.append({"role": "user", "content": f"Why does this fail?\n```\n{code}\n```"})
        else:
            messages.append({"role": "user", "content": sentence(rng, 4, 25)})
        long_answer = rng.random() < 0.08
        answer = (
            "\n".join(rng.choice(CODE) for _ in range(rng.randint(20, 60))) if long_answer else sentence(rng, 8, 50)
        )
        messages.append({"role": "assistant", "content": answer})
    return messages


def write_data(directory: Path, count: int, seed: int) -> tuple[Path, Path]:
    rng = random.Random(seed)
    rows = [json.dumps({"messages": conversation(rng)}) for _ in range(count)]
    cut = int(count * 0.8)
    train, test = directory / "train.jsonl", directory / "test.jsonl"
    train.write_text("\n".join(rows[:cut]) + "\n")
    test.write_text("\n".join(rows[cut:]) + "\n")
    return train, test


HYPER = {"learning_rate": 1e-3, "lora_r": 16, "lora_alpha": 32, "epochs": 1, "warmup_steps": 0, "scheduler": "linear"}


def held_out_metrics(model, tokenizer, test: Path) -> dict[str, float]:
    from milton_lora.chat.conversations import read_conversations
    from milton_lora.chat.masks import tokenize_split
    from milton_lora.evaluate.metrics import masked_lm_metrics

    model.eval()
    split = tokenize_split(tokenizer, read_conversations(test), MAX_LENGTH)
    return masked_lm_metrics(model, split.examples, tokenizer.pad_token_id, batch_size=8).as_dict()


def run_ours(model_dir: Path, train: Path, test: Path, work: Path) -> dict[str, float]:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from milton_lora.chat.tokenizer import load_tokenizer
    from milton_lora.config import TrainConfig
    from milton_lora.settings import Settings
    from milton_lora.train.checks import make_plan
    from milton_lora.train.runner import run_training

    config = TrainConfig(
        base_model_path=str(model_dir), lora_r=HYPER["lora_r"], lora_alpha=HYPER["lora_alpha"], lora_dropout=0.0,
        learning_rate=HYPER["learning_rate"], num_epochs=HYPER["epochs"], per_device_train_batch_size=2,
        gradient_accumulation_steps=1, bf16=False, lr_scheduler_type=HYPER["scheduler"],
        warmup_steps=HYPER["warmup_steps"], train_file=str(train), test_file=str(test), max_seq_length=MAX_LENGTH,
        use_gradient_checkpointing=False, min_free_disk_gb=0, save_steps=100000, eval_steps=100000,
    )  # fmt: skip
    plan = make_plan(Settings.from_env(work), config, Path("bench"), "bench_ours", cuda=False, cuda_bf16=False)
    result = run_training(plan, show_progress=False)
    tokenizer = load_tokenizer(model_dir)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), str(result.adapter_dir))
    results = result.metadata["results"]
    runtime = result.metadata["timings"]["train_runtime"]
    return {"tokens": results["tokens_seen"], "seconds": runtime, "steps": results["global_steps"],
            **held_out_metrics(model, tokenizer, test)}  # fmt: skip


def run_baseline(model_dir: Path, train: Path, test: Path, work: Path) -> dict[str, float]:
    """What the TRL quick start leads a user to write: conversational dataset, padding, no packing."""
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.pad_token = "<|finetune_right_pad_id|>"
    args = SFTConfig(
        output_dir=str(work / "baseline"), per_device_train_batch_size=8, learning_rate=HYPER["learning_rate"],
        num_train_epochs=HYPER["epochs"], lr_scheduler_type=HYPER["scheduler"], warmup_steps=HYPER["warmup_steps"],
        max_length=MAX_LENGTH, report_to="none", save_strategy="no", bf16=False, use_cpu=True,
        dataloader_pin_memory=False, include_num_input_tokens_seen="non_padding", disable_tqdm=True,
    )  # fmt: skip
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir), args=args,
        train_dataset=load_dataset("json", data_files=str(train), split="train"), processing_class=tokenizer,
        peft_config=LoraConfig(r=HYPER["lora_r"], lora_alpha=HYPER["lora_alpha"], lora_dropout=0.0,
                               target_modules="all-linear", task_type="CAUSAL_LM"),
    )  # fmt: skip
    output = trainer.train()
    from milton_lora.chat.tokenizer import load_tokenizer

    metrics = held_out_metrics(trainer.model, load_tokenizer(model_dir), test)
    return {"tokens": trainer.state.num_input_tokens_seen, "seconds": output.metrics["train_runtime"],
            "steps": trainer.state.global_step, **metrics}  # fmt: skip


def worker(kind: str, model_dir: Path, train: Path, test: Path, work: Path) -> None:
    import transformers

    transformers.utils.logging.set_verbosity_error()
    run = run_ours if kind == "ours" else run_baseline
    result = run(model_dir, train, test, work)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def matmul_peak_flops(size: int = 1024, repeats: int = 20) -> float:
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def parameter_count(model_dir: Path) -> int:
    from transformers import AutoModelForCausalLM

    return sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(model_dir).parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=400)
    parser.add_argument("--size", default="small", choices=["tiny", "small", "base"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=["ours", "baseline"])
    parser.add_argument("--dir", type=Path)
    options = parser.parse_args()
    if options.worker:
        d = options.dir
        worker(options.worker, d / "model", d / "train.jsonl", d / "test.jsonl", d / options.worker)
        return

    from milton_lora.demo.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build_tiny_model(work / "model", size=options.size, seed=options.seed)
        write_data(work, options.conversations, options.seed)
        peak = matmul_peak_flops()
        params = parameter_count(work / "model")
        results = {}
        for kind in ("baseline", "ours"):
            (work / kind).mkdir()
            done = subprocess.run(
                [sys.executable, __file__, "--worker", kind, "--dir", str(work)], capture_output=True, text=True
            )
            line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                sys.exit(f"{kind} failed:\n{done.stderr[-4000:]}")
            results[kind] = json.loads(line.removeprefix("RESULT "))

    print(f"model: {options.size} ({params / 1e6:.1f}M parameters), {options.conversations} conversations "
          f"(80/20 split), max_length {MAX_LENGTH}, fp32 matmul peak {peak / 1e9:.1f} GFLOP/s")  # fmt: skip
    header = (
        f"{'':12}{'steps':>7}{'tokens':>10}{'tokens/s':>11}{'eval loss':>11}{'tok acc':>9}{'peak RSS':>11}{'MFU':>8}"
    )
    print(header)
    for kind, r in results.items():
        rate = r["tokens"] / r["seconds"]
        mfu = rate * 4 * params / peak
        print(f"{kind:12}{r['steps']:>7}{r['tokens']:>10}{rate:>11,.0f}{r['eval_loss']:>11.4f}"
              f"{r['token_accuracy']:>9.2%}{r['peak_rss_mb']:>9.0f}MB{mfu:>8.1%}")  # fmt: skip
    ours, base = results["ours"], results["baseline"]
    ratio = (ours["tokens"] / ours["seconds"]) / (base["tokens"] / base["seconds"])
    print(
        f"tokens/s ratio milton-lora / baseline: {ratio:.2f}x; "
        f"eval loss {ours['eval_loss']:.4f} vs {base['eval_loss']:.4f}"
    )


if __name__ == "__main__":
    main()
