"""Training throughput: milton-lora's trainer vs a plain TRL SFTTrainer as a typical user writes it.

Both train the same model on the same synthetic, long-tailed chat data (many short turns, some long
pasted-code turns) with the same LoRA, learning rate, schedule and number of epochs, one after the
other in child processes (so each one's peak RSS is its own, read when training ends). Printed side
by side: non-pad tokens/s over the training time (ours evaluates the held-out split at the end of each
epoch inside `train()`; that time is left out, as in its metadata.json; the baseline has no held-out
split), the ratio, eval loss on the same held-out split computed the same way (assistant tokens only,
`milton_lora.evaluate.metrics`), peak RSS, and MFU against the fp32 matmul peak measured in this run
(the best of square matmuls before and after the runs), with the FLOP accounting written out. The load
average before and after each run says how busy the machine was.

Models: `--model tiny` builds the local tiny model (`--size`); `--model smollm2` uses SmolLM2-135M-Instruct
as `milton-lora base fetch smollm2-135m` leaves it (or `--model-dir`), and when it is not there a random
Llama of the same shape (30 layers, hidden 576, 9 heads, 3 key/value heads, intermediate 1536, 49152
vocabulary, tied embeddings) with the tiny model's tokenizer.

Same epochs rather than same step count: a packed step holds several conversations, so equal steps
would hand our trainer more data.

    .venv/bin/python bench/train_throughput.py [--conversations 400] [--size small]
    .venv/bin/python bench/train_throughput.py --model smollm2 --conversations 100
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
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
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
SMOLLM2_SHAPE = {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
                 "num_key_value_heads": 3, "head_dim": 64, "vocab_size": 49152, "tie_word_embeddings": True,
                 "rope_theta": 100000.0, "max_position_embeddings": 8192}  # fmt: skip


def held_out_metrics(model, tokenizer, test: Path) -> dict[str, float]:
    from milton_lora.chat.conversations import read_conversations
    from milton_lora.chat.masks import tokenize_split
    from milton_lora.evaluate.metrics import masked_lm_metrics

    model.eval()
    split = tokenize_split(tokenizer, read_conversations(test), MAX_LENGTH)
    return masked_lm_metrics(model, split.examples, tokenizer.pad_token_id, batch_size=4).as_dict()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class ChildMemory(threading.Thread):
    """The largest unique memory (USS) of this process's children (the DataLoader worker) while training runs;
    their RSS would count the pages they share with the training process after the fork."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mb = 0.0
        self.running = True

    def run(self) -> None:
        import psutil

        while self.running:
            for child in psutil.Process().children(recursive=True):
                try:
                    self.peak_mb = max(self.peak_mb, child.memory_full_info().uss / 2**20)
                except psutil.Error:
                    continue
            time.sleep(0.5)


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
        min_free_disk_gb=0, save_steps=100000, eval_steps=100000,
    )  # fmt: skip
    plan = make_plan(Settings.from_env(work), config, Path("bench"), "bench_ours", cuda=False, cuda_bf16=False)
    children = ChildMemory()
    children.start()
    result = run_training(plan, show_progress=False)
    rss, children.running = peak_rss_mb(), False
    tokenizer = load_tokenizer(model_dir)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), str(result.adapter_dir))
    results, timings = result.record.results, result.record.timings
    runtime = timings.train_runtime - timings.eval_seconds_in_training
    settings = dict(plan.rows())
    return {"tokens": results.tokens_seen, "seconds": runtime, "steps": results.global_steps, "peak_rss_mb": rss,
            "settings": f"{settings['attention, loss']}; LoRA layers {settings['LoRA layers']}; "
                        f"gradient checkpointing {settings['gradient checkpointing']}; "
                        f"loader worker {children.peak_mb:.0f} MB unique memory (not in peak RSS)",
            **held_out_metrics(model, tokenizer, test)}  # fmt: skip


def run_baseline(model_dir: Path, train: Path, test: Path, work: Path) -> dict[str, float]:
    """What the TRL quick start leads a user to write: conversational dataset, padding, no packing, TRL defaults."""
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from milton_lora.demo.tiny_model import RIGHT_PAD

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = RIGHT_PAD
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
    rss = peak_rss_mb()
    from milton_lora.chat.tokenizer import load_tokenizer

    metrics = held_out_metrics(trainer.model, load_tokenizer(model_dir), test)
    return {"tokens": trainer.state.num_input_tokens_seen, "seconds": output.metrics["train_runtime"],
            "steps": trainer.state.global_step, "peak_rss_mb": rss,
            "settings": "TRL defaults: SDPA, padded batches of 8, gradient checkpointing on", **metrics}  # fmt: skip


def worker(kind: str, model_dir: Path, train: Path, test: Path, work: Path) -> None:
    import transformers

    transformers.utils.logging.set_verbosity_error()
    run = run_ours if kind == "ours" else run_baseline
    print("RESULT " + json.dumps(run(model_dir, train, test, work)))


def matmul_peak_flops(sizes: tuple[int, ...] = (1024, 2048), trials: int = 3) -> float:
    """The best fp32 FLOP/s of square matmuls (the most a matmul-bound step could reach here)."""
    import torch

    best = 0.0
    for size in sizes:
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b
        repeats = max(2, int(2e10 // (2 * size**3)))
        for _ in range(trials):
            start = time.perf_counter()
            for _ in range(repeats):
                a @ b
            best = max(best, 2 * size**3 * repeats / (time.perf_counter() - start))
    return best


def smollm2_dir(work: Path, given: Path | None, seed: int) -> tuple[Path, str]:
    """The real SmolLM2-135M-Instruct folder when there is one, else a random model of the same shape."""
    fetched = given or fetched_smollm2()
    if fetched is not None and (fetched / "config.json").exists():
        return fetched, f"SmolLM2-135M-Instruct ({fetched})"
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from milton_lora.demo.tiny_model import build_tiny_model

    directory = build_tiny_model(work / "model", size="small", seed=seed)  # for its tokenizer and chat template
    reference = LlamaConfig.from_pretrained(directory)
    config = LlamaConfig(**SMOLLM2_SHAPE, bos_token_id=reference.bos_token_id, eos_token_id=reference.eos_token_id)
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory, "random Llama of SmolLM2-135M's shape (not fetched: milton-lora base fetch smollm2-135m)"


def fetched_smollm2() -> Path | None:
    try:
        from milton_lora.settings import default_cache_dir
    except ImportError:  # a checkout without `milton-lora base fetch`
        return None
    return default_cache_dir() / "models" / "smollm2-135m"


def flop_accounting(model_dir: Path, train: Path) -> tuple[float, str]:
    """Training FLOPs per token and how they were counted: 4 x base matmul parameters (forward, and the backward
    pass to the inputs of frozen weights), 6 x LoRA parameters (plus their weight gradients), and causal
    attention over each conversation's own length (6 x layers x attention width x sum(L^2) / sum(L))."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from milton_lora.chat.conversations import read_conversations
    from milton_lora.chat.masks import tokenize_split
    from milton_lora.chat.tokenizer import load_tokenizer

    config = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    base = sum(m.weight.numel() for _, m in linears)
    lora = sum(HYPER["lora_r"] * (m.in_features + m.out_features) for name, m in linears if name.endswith(TARGETS))
    lengths = [len(e["input_ids"]) for e in tokenize_split(load_tokenizer(model_dir), read_conversations(train),
                                                            MAX_LENGTH).examples]  # fmt: skip
    mean_span = sum(n * n for n in lengths) / sum(lengths)
    width = config.num_attention_heads * (
        getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    )
    attention = 6 * config.num_hidden_layers * width * mean_span
    per_token = 4 * base + 6 * lora + attention
    text = (f"FLOPs per token = 4 x {base / 1e6:.1f}M base matmul parameters (every linear layer and the output "
            f"head; the embedding lookup is not a matmul) + 6 x {lora / 1e6:.2f}M LoRA parameters + 6 x "
            f"{config.num_hidden_layers} layers x {width} attention width x {mean_span:.0f} (sum L^2 / sum L over the "
            f"training conversations) = {per_token / 1e9:.3f} GFLOP")  # fmt: skip
    return per_token, text


def run_child(kind: str, work: Path) -> dict[str, float]:
    before = os.getloadavg()[0]
    done = subprocess.run([sys.executable, __file__, "--worker", kind, "--dir", str(work)], capture_output=True,
                          text=True)  # fmt: skip
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        sys.exit(f"{kind} failed:\n{done.stderr[-4000:]}")
    return {**json.loads(line.removeprefix("RESULT ")), "load": f"{before:.1f} -> {os.getloadavg()[0]:.1f}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=400)
    parser.add_argument("--model", default="tiny", choices=["tiny", "smollm2"])
    parser.add_argument("--size", default="small", choices=["tiny", "small", "base"], help="--model tiny's size")
    parser.add_argument("--model-dir", type=Path, help="--model smollm2: this folder instead of the fetched one")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=["ours", "baseline"])
    parser.add_argument("--dir", type=Path)
    options = parser.parse_args()
    if options.worker:
        d = options.dir
        worker(options.worker, Path((d / "model_path").read_text()), d / "train.jsonl", d / "test.jsonl",
               d / options.worker)  # fmt: skip
        return

    from milton_lora.demo.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if options.model == "smollm2":
            model_dir, described = smollm2_dir(work, options.model_dir, options.seed)
        else:
            model_dir, described = build_tiny_model(work / "model", size=options.size, seed=options.seed), options.size
        (work / "model_path").write_text(str(model_dir))
        train, _ = write_data(work, options.conversations, options.seed)
        per_token, accounting = flop_accounting(model_dir, train)
        peak = matmul_peak_flops()
        results = {}
        for kind in ("baseline", "ours"):
            (work / kind).mkdir()
            results[kind] = run_child(kind, work)
        peak = max(peak, matmul_peak_flops())

    print(f"model: {described}; {options.conversations} conversations (80/20 split), max_length {MAX_LENGTH}, "
          f"{os.cpu_count()} CPUs, fp32 matmul peak {peak / 1e9:.1f} GFLOP/s")  # fmt: skip
    print(accounting)
    print(f"{'':10}{'steps':>7}{'tokens':>9}{'tokens/s':>10}{'eval loss':>11}{'tok acc':>9}{'peak RSS':>10}"
          f"{'MFU':>7}  load avg")  # fmt: skip
    for kind, r in results.items():
        rate = r["tokens"] / r["seconds"]
        mfu = rate * per_token / peak
        print(f"{kind:10}{r['steps']:>7}{r['tokens']:>9}{rate:>10,.0f}{r['eval_loss']:>11.4f}"
              f"{r['token_accuracy']:>9.2%}{r['peak_rss_mb']:>8.0f}MB{mfu:>7.1%}  {r['load']}")  # fmt: skip
    for kind, r in results.items():
        print(f"{kind}: {r['settings']}")
    ours, base = results["ours"], results["baseline"]
    ratio = (ours["tokens"] / ours["seconds"]) / (base["tokens"] / base["seconds"])
    print(
        f"tokens/s ratio milton-lora / baseline: {ratio:.2f}x; "
        f"eval loss {ours['eval_loss']:.4f} vs {base['eval_loss']:.4f}"
    )


if __name__ == "__main__":
    main()
