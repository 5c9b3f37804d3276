"""`milton-lora eval` (= `scripts/eval_lora.py`): plan, evaluate, print the results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from milton_lora.cli.app import app
from milton_lora.cli.common import (
    console,
    print_rows,
    registry_of,
    settings_of,
)
from milton_lora.errors import MiltonError


@app.command("eval")
def evaluate(
    ctx: typer.Context,
    run_id: Annotated[
        str, typer.Option("--run-id", help="The adapter to evaluate (lora_YYYYMMDD_HHMMSS, latest, production...).")
    ],
    no_auto_promote: Annotated[
        bool, typer.Option("--no-auto-promote", help="Record results but leave the status as it is.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check inputs, print the plan, write nothing.")] = False,
    pass_threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Pass rate that moves training → candidate.")
    ] = 0.9,
    benchmarks: Annotated[
        Path | None, typer.Option(help="Benchmark YAML (default: training/eval/ or shipped).")
    ] = None,
    sanity: Annotated[
        Path | None, typer.Option(help="Sanity prompts YAML (default: training/eval/ or shipped).")
    ] = None,
    test_file: Annotated[Path | None, typer.Option(help="Held-out JSONL (default: the one training used).")] = None,
    base_model: Annotated[
        Path | None, typer.Option(help="Base model folder (default: the one training recorded).")
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Longest answer generated per prompt.")] = 256,
    batch_size: Annotated[int, typer.Option(min=1, help="Prompts / conversations per batch.")] = 8,
) -> None:
    """Evaluate an adapter: held-out metrics vs base and production, sanity prompts, task benchmarks."""
    from milton_lora.evaluate.runner import (
        EvalPlan,
        base_model_of,
        check_adapter_files,
        evaluate_adapter,
        max_length_of,
        test_file_of,
        training_record,
    )
    from milton_lora.evaluate.suites import load_benchmarks, load_sanity, suite_path

    settings = settings_of(ctx)
    registry = registry_of(settings)
    run_id = registry.resolve(run_id)
    adapter_dir = registry.adapter_dir(run_id)
    check_adapter_files(adapter_dir, run_id)
    production = registry.load().production()
    production_dir = registry.path_of(production.adapter_path) if production and production.run_id != run_id else None
    eval_dir = settings.home / "training" / "eval"
    sanity_file = suite_path(eval_dir, "sanity_prompts.yaml", sanity)
    benchmark_file = suite_path(eval_dir, "benchmarks.yaml", benchmarks)
    record = training_record(adapter_dir)
    held_out = test_file or test_file_of(record, settings.export_dir / "test.jsonl")
    if not held_out.exists():
        raise MiltonError(f"{held_out}: held-out split not found; export first or pass --test-file")
    base = base_model or base_model_of(adapter_dir, record)
    if not (base / "config.json").exists():
        raise MiltonError(f"{base}: base model not found (recorded in {adapter_dir}/metadata.json)")
    plan = EvalPlan(
        run_id=run_id, adapter_dir=adapter_dir, run_dir=registry.run_dir(run_id), base_model=base,
        test_file=held_out, sanity_path=sanity_file, benchmarks_path=benchmark_file,
        sanity=load_sanity(sanity_file), benchmarks=load_benchmarks(benchmark_file), production_dir=production_dir,
        production_id=production.run_id if production_dir else None, pass_threshold=pass_threshold,
        auto_promote=not no_auto_promote, max_new_tokens=max_new_tokens, max_seq_length=max_length_of(record),
        batch_size=batch_size,
    )  # fmt: skip
    print_rows("Evaluation plan" + (" (dry run: nothing evaluated or written)" if dry_run else ""), plan.rows())
    if dry_run:
        return
    with console.status("evaluating (metrics, sanity prompts, benchmarks)..."):
        metrics = evaluate_adapter(plan, registry, f"eval --run-id {run_id}")
    print_evaluation(metrics, plan.run_dir)


def print_evaluation(metrics: dict, run_dir: Path) -> None:
    table = Table(title=f"Held-out metrics ({metrics['test_conversations']} conversations, assistant tokens)")
    table.add_column("model")
    for column in ("eval loss", "perplexity", "token accuracy"):
        table.add_column(column, justify="right")
    rows = [("adapter", metrics["adapter"]), ("base", metrics["base"])]
    if metrics["production"]:
        rows.append((f"production {metrics['production']['run_id']}", metrics["production"]))
    for name, m in rows:
        table.add_row(name, f"{m['eval_loss']:.4f}", f"{m['perplexity']:.2f}", f"{m['token_accuracy']:.2%}")
    console.print(table)
    bench = metrics["benchmarks"]
    categories = Table(title=f"Task benchmarks: {bench['passed']}/{bench['total']} passed ({bench['pass_rate']:.0%})")
    categories.add_column("category")
    categories.add_column("passed", justify="right")
    for name, group in bench["by_category"].items():
        categories.add_row(name, f"{group['passed']}/{group['total']}")
    console.print(categories)
    console.print(
        f"Status: [bold]{metrics['status']}[/] (threshold {metrics['pass_threshold']:.0%}). "
        f"Details: {run_dir / 'metrics.json'}, sanity answers: {run_dir / 'sanity_responses.json'}"
    )
