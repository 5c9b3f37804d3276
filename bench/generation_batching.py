"""Batched generation (left padding, stop at end-of-turn) vs one prompt at a time, same model, same prompts.

Both paths are `milton_lora.inference.generate`, with batch_size 8 and 1; greedy decoding gives the
same answers, which the script checks before printing the speed ratio.

    .venv/bin/python bench/generation_batching.py [--size small] [--prompts 32] [--max-new-tokens 64]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from importlib.resources import files
from pathlib import Path

from milton_lora.demo.tiny_model import build_tiny_model
from milton_lora.evaluate.suites import load_benchmarks, load_sanity
from milton_lora.inference import generate, load_for_inference


def prompts(count: int) -> list[list[dict[str, str]]]:
    data = Path(str(files("milton_lora") / "data"))
    pool = [p.conversation() for p in load_sanity(data / "sanity_prompts.yaml").prompts]
    pool += [t.conversation() for t in load_benchmarks(data / "benchmarks.yaml").tests]
    return [pool[i % len(pool)] for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=["tiny", "small", "base"])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer = load_for_inference(build_tiny_model(Path(tmp) / "model", size=options.size))
    conversations = prompts(options.prompts)
    timings = {}
    answers = {}
    for batch_size in (1, options.batch_size):
        start = time.perf_counter()
        answers[batch_size] = generate(model, tokenizer, conversations, options.max_new_tokens, batch_size)
        timings[batch_size] = time.perf_counter() - start
    same = answers[1] == answers[options.batch_size]
    print(f"model {options.size}, {options.prompts} prompts, up to {options.max_new_tokens} new tokens, greedy")
    print(f"one at a time : {timings[1]:7.2f} s  ({options.prompts / timings[1]:6.2f} prompts/s)")
    print(f"batched ({options.batch_size:>2})  : {timings[options.batch_size]:7.2f} s  "
          f"({options.prompts / timings[options.batch_size]:6.2f} prompts/s)")  # fmt: skip
    print(f"speed ratio batched / one at a time: {timings[1] / timings[options.batch_size]:.2f}x; "
          f"identical answers: {same}")  # fmt: skip


if __name__ == "__main__":
    main()
