"""A realistic month on SmolLM2-135M with a shipped training config: does the schedule fit the data, does the
adapter beat the base model on held-out conversations, and does it take on the style without losing itself?

The month is generated here (seeded): about 150 short conversations of one person with their assistant, whose
replies have a recognisable shape: the opener "Short answer first:", two or three "- " bullets, and the
sign-off "(that's the gist)". 24 more conversations are held out, a third of them on topics the training
month never touches. This is the
data the shipped defaults were tuned on; `bench/persona` is the independent benchmark with its own persona.

Prints the plan's schedule, the base model's and the adapter's held-out loss (every evaluation of the run),
the best step and why training ended, and, on 8 new prompts (4 in the person's topics, 4 general questions),
how often base and adapter replies open and sign off the person's way and how many replies loop.

    .venv/bin/python bench/schedule_month.py                         # lora_default.yaml as shipped
    .venv/bin/python bench/schedule_month.py --set learning_rate=5e-4 --config lora_light.yaml
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import yaml

OPENER, SIGN_OFF = "Short answer first:", "(that's the gist)"
TOPICS = {
    "running": (
        ["my 10 km pace", "shin splints after long runs", "a half marathon plan", "running in the heat"],
        [
            "keep easy runs at a pace where you can talk",
            "add 10% distance per week at most",
            "one long run on Sunday, two short ones midweek",
            "drink 500 ml an hour before",
            "rest a day after any sharp pain",
            "strides at the end of easy runs build speed",
        ],
    ),
    "cooking": (
        ["a quick dal", "meal prep for the week", "why my bread is dense", "a dinner for six"],
        [
            "soak the lentils 30 minutes first",
            "cook grains on Sunday, keep them 4 days",
            "let the dough rise until doubled, about 90 minutes",
            "salt early, taste late",
            "a sheet-pan dish scales well",
            "weigh flour in grams, not cups",
        ],
    ),
    "money": (
        ["the holiday budget", "whether to pay the loan early", "a savings rule", "splitting rent"],
        [
            "put 15% aside the day the salary lands",
            "pay the highest interest first",
            "keep three months of costs as a buffer",
            "split by income share, not 50/50",
            "review subscriptions every quarter",
            "book flights on weekdays, 6-8 weeks ahead",
        ],
    ),
    "work": (
        ["the status email to Lena", "how to say no to a meeting", "the Q3 review slides", "a 1:1 agenda"],
        [
            "lead with the decision you need",
            "three bullets, no more",
            "offer a written update instead",
            "put numbers before adjectives",
            "end with the next step and a date",
            "send it before 10:00",
        ],
    ),
    "garden": (
        ["tomatoes on the balcony", "when to repot the fig", "slugs on the lettuce", "watering in August"],
        [
            "water at the base, in the morning",
            "repot in early spring, one size up",
            "beer traps work for slugs",
            "mulch keeps the soil cool",
            "pinch the side shoots weekly",
            "a 30 cm pot per plant",
        ],
    ),
    "travel": (
        ["a weekend in Lisbon", "packing light for a week", "the night train to Vienna", "jet lag"],
        [
            "one carry-on, 7 kg, rolled clothes",
            "book the couchette a month ahead",
            "get daylight early on day one",
            "the 28 tram before 9:00 avoids queues",
            "keep documents in one pouch",
            "plan one thing per day, not five",
        ],
    ),
}
HELD_OUT = {
    "reading": (
        ["a book for the train", "reading more in the evenings"],
        [
            "20 pages before bed beats none",
            "keep the book where the phone goes",
            "short stories fit commutes",
            "stop a book you do not enjoy",
        ],
    ),
    "sleep": (
        ["waking at 4 am", "a wind-down routine"],
        [
            "same wake time every day",
            "no screens 30 minutes before bed",
            "keep the room at 18 C",
            "caffeine before 14:00 only",
        ],
    ),
}
ASK = ["Can you help me with {t}?", "What do you think about {t}?", "Quick question about {t}.",
       "I need advice on {t}.", "Any tips for {t}?", "Remind me what we said about {t}."]  # fmt: skip
NEW_PROMPTS = ["How should I plan my week of runs before a 10 km race?", "What should I cook for a rainy Sunday?",
               "How do I ask my manager for a day off?", "What should I pack for three days in Porto?"]  # fmt: skip
GENERAL = ["What is the capital of France?", "How many days are in a leap year?", "What is 12 times 12?",
           "Who wrote Romeo and Juliet?"]  # fmt: skip


def reply(rng: random.Random, tips: list[str]) -> str:
    bullets = "\n".join(f"- {tip[0].upper()}{tip[1:]}." for tip in rng.sample(tips, rng.choice((2, 3))))
    return f"{OPENER}\n{bullets}\n{SIGN_OFF}"


def conversations(topics: dict, count: int, rng: random.Random) -> list[dict]:
    rows = []
    for _ in range(count):
        asks, tips = topics[rng.choice(sorted(topics))]
        messages = [{"role": "user", "content": rng.choice(ASK).format(t=rng.choice(asks))},
                    {"role": "assistant", "content": reply(rng, tips)}]  # fmt: skip
        if rng.random() < 0.3:
            messages += [{"role": "user", "content": rng.choice(["Thanks. And one more thing?", "Shorter please.",
                                                                 "Why?"])},
                         {"role": "assistant", "content": reply(rng, tips)}]  # fmt: skip
        rows.append({"messages": messages})
    return rows


def write_month(directory: Path, train: int, test: int, seed: int) -> tuple[Path, Path]:
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "train.jsonl", directory / "test.jsonl"
    for path, rows in zip(paths, (conversations(TOPICS, train, rng), conversations(TOPICS | HELD_OUT, test, rng)),
                          strict=True):  # fmt: skip
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return paths


def style_of(replies: list[str]) -> str:
    from milton_lora.evaluate.diagnosis import is_repetitive

    opened = sum(r.strip().startswith(OPENER) for r in replies)
    signed = sum(SIGN_OFF in r for r in replies)
    loops = sum(is_repetitive(r, "") for r in replies)
    return f"opener {opened}/{len(replies)}, sign-off {signed}/{len(replies)}, looping {loops}/{len(replies)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="lora_default.yaml", help="a shipped training config")
    parser.add_argument("--set", action="append", default=[], help="key=value over the config (YAML value)")
    parser.add_argument("--conversations", type=int, default=150)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from peft import PeftModel

    from milton_lora.base import packaged_model_dir
    from milton_lora.inference import generate, load_for_inference
    from milton_lora.settings import Settings, default_cache_dir, shipped
    from milton_lora.train.launch import plan_training
    from milton_lora.train.runner import run_training

    base = packaged_model_dir("smollm2-135m", default_cache_dir())
    work = Path(tempfile.mkdtemp(prefix="schedule_month_"))
    train_file, test_file = write_month(work / "export", args.conversations, 24, args.seed)
    config = yaml.safe_load(shipped("configs", args.config).read_text())
    config |= {"base_model_path": str(base), "train_file": str(train_file), "test_file": str(test_file),
               "min_free_disk_gb": 0, "bf16": False}  # fmt: skip
    config |= {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.set)}
    config_path = work / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))

    started = time.time()
    plan = plan_training(Settings.from_env(work), config_path, None)
    for name, value in plan.schedule.rows() if plan.schedule else []:
        print(f"{name:>16}: {value}")
    result = run_training(plan, show_progress=False)
    trained = time.time() - started
    assert result.record is not None
    results = result.record.results
    history = json.loads(
        (max((result.run_dir / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
         / "trainer_state.json").read_text())["log_history"]  # fmt: skip
    evals = [(log["step"], round(log["eval_loss"], 4)) for log in history if "eval_loss" in log]
    print(f"held-out loss: base {results.base_eval_loss:.4f}, adapter {results.final_eval_loss:.4f} "
          f"(best step {results.best_step}); final train loss {results.final_train_loss:.4f}")  # fmt: skip
    print(f"evaluations (step, loss): {evals}")
    print(f"ended: {results.stop_message}; health: {result.record.health_status}; {trained:.0f} s")

    model, tokenizer = load_for_inference(base)
    prompts = [[{"role": "user", "content": p}] for p in NEW_PROMPTS + GENERAL]
    base_replies = generate(model, tokenizer, prompts, max_new_tokens=48)
    model = PeftModel.from_pretrained(model, str(result.adapter_dir))
    adapter_replies = generate(model, tokenizer, prompts, max_new_tokens=48)
    n = len(NEW_PROMPTS)
    for name, replies in (("base", base_replies), ("adapter", adapter_replies)):
        print(f"{name:>8} on the person's topics: {style_of(replies[:n])}; on general questions: "
              f"{style_of(replies[n:])}")  # fmt: skip
    for prompt, ours, theirs in zip(NEW_PROMPTS + GENERAL, adapter_replies, base_replies, strict=True):
        print(f"\n> {prompt}\n  base:    {theirs[:160]!r}\n  adapter: {ours[:160]!r}")
    print(f"\nwall time {time.time() - started:.0f} s; work dir {work}")


if __name__ == "__main__":
    main()
