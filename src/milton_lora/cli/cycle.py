"""`milton-lora cycle`: the weekly loop in one command (export → train → evaluate → promotion decision),
printed as the `export`, `train`, `eval` and `promote` commands print it."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from milton_lora.cli.app import app
from milton_lora.cli.common import (
    console,
    err_console,
    print_rows,
    print_warning,
    redactor_of,
    registry_of,
    serve_config_of,
    settings_of,
)
from milton_lora.cli.evaluate import (
    DEFAULTS,
    AllowRemoteJudge,
    BatchSize,
    BenchmarksFile,
    JudgeApiKeyEnv,
    JudgeMaxTokens,
    JudgeModel,
    JudgePrompts,
    JudgeUrl,
    MaxNewTokens,
    PassThreshold,
    SanityFile,
    StylePrompts,
    print_evaluation,
)
from milton_lora.cli.registry import promote_adapter
from milton_lora.cli.train import FromProduction, print_training_summary
from milton_lora.evaluate.options import EvalOptions
from milton_lora.settings import Settings

if TYPE_CHECKING:
    from milton_lora.cycle import CycleLog, CyclePlan, Promotion, StageName
    from milton_lora.evaluate.result import EvalResult
    from milton_lora.export import ExportSummary
    from milton_lora.train.checks import TrainPlan
    from milton_lora.train.runner import TrainResult


@app.command()
def cycle(
    ctx: typer.Context,
    days: Annotated[int, typer.Option(min=1, help="Export conversations active in the last N days.")] = 7,
    config: Annotated[
        Path, typer.Option("--config", help="Training YAML; a bare name resolves in training/configs/.")
    ] = Path("lora_default.yaml"),
    from_production: FromProduction = False,
    promote_if_candidate: Annotated[
        bool,
        typer.Option("--promote-if-candidate", help="Promote to production without asking when the gate passes."),
    ] = False,
    judge_url: JudgeUrl = None,
    judge_model: JudgeModel = None,
    judge_api_key_env: JudgeApiKeyEnv = None,
    judge_prompts: JudgePrompts = DEFAULTS.judge_prompts,
    judge_max_tokens: JudgeMaxTokens = DEFAULTS.judge_max_tokens,
    allow_remote_judge: AllowRemoteJudge = False,
    pass_threshold: PassThreshold = None,
    benchmarks: BenchmarksFile = None,
    sanity: SanityFile = None,
    max_new_tokens: MaxNewTokens = DEFAULTS.max_new_tokens,
    batch_size: BatchSize = DEFAULTS.batch_size,
    style_prompts: StylePrompts = DEFAULTS.style_prompts,
    preference_config: Annotated[
        Path,
        typer.Option(
            "--preference-config",
            help="After SFT, train on the export's preferences with this dpo/kto config, when it holds its "
            "min_train_preferences.",
        ),
    ] = Path("lora_dpo.yaml"),
    no_preferences: Annotated[
        bool, typer.Option("--no-preferences", help="No preference stage after SFT, whatever the export holds.")
    ] = False,
    restate_facts: Annotated[
        bool,
        typer.Option(
            "--restate-facts",
            help="Export with the facts you state restated by the --config's base model (export.yaml: restate_facts).",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show each stage's plan; export, train, evaluate and log nothing.")
    ] = False,
) -> None:
    """Run the week: export, train, evaluate, show the decision and promote when a person confirms.

    One cycle at a time (a second one exits 75); a log of each in runs/cycles/; a failed stage exits 1."""
    from milton_lora.cycle import CycleRequest, log_path, plan_cycle, run_cycle
    from milton_lora.export import export_options_of

    evaluation = EvalOptions(
        judge_url=judge_url, judge_model=judge_model, judge_api_key_env=judge_api_key_env,
        judge_prompts=judge_prompts, judge_max_tokens=judge_max_tokens, allow_remote_judge=allow_remote_judge,
        pass_threshold=pass_threshold, benchmarks=benchmarks, sanity=sanity, max_new_tokens=max_new_tokens,
        batch_size=batch_size, style_prompts=style_prompts,
    )  # fmt: skip
    settings = settings_of(ctx)
    options = export_options_of(settings)
    request = CycleRequest(days=days, config=config, from_production=from_production,
                           promote_if_candidate=promote_if_candidate, evaluation=evaluation,
                           export_options=replace(options, restate_facts=restate_facts or options.restate_facts),
                           preference_config=None if no_preferences else preference_config)  # fmt: skip
    if dry_run:
        print_cycle_plan(plan_cycle(settings, request, redactor_of(settings)))
        return
    command = "cycle" + (" --promote-if-candidate" if promote_if_candidate else "")
    log = run_cycle(settings, request, TerminalUI(settings, command), redactor_of(settings))
    print_cycle(log, log_path(settings, log.cycle_id))


class TerminalUI:
    """The cycle on a terminal: each stage printed as its own command prints it; promotion asked with y/N."""

    def __init__(self, settings: Settings, command: str):
        self.settings, self.command = settings, command

    def stage_started(self, name: StageName) -> None:
        console.print(Rule(f"[bold]{name}[/]"))

    def exported(self, summary: ExportSummary) -> None:
        print_rows(f"Exported to {summary.output_dir}", summary.rows(), justify="right")

    def training_planned(self, plan: TrainPlan) -> None:
        print_rows("Training plan", plan.rows())
        for warning in plan.warnings:
            print_warning(warning)

    def trained(self, result: TrainResult) -> None:
        print_training_summary(result.record, result.adapter_dir, result.run_dir, next_step=False)

    def evaluated(self, result: EvalResult, run_dir: Path) -> None:
        print_evaluation(result, run_dir)

    def eval_console(self) -> Console | None:
        return err_console if err_console.is_terminal else None

    def promote(self, run_id: str, asked_in_advance: bool) -> Promotion:
        from milton_lora.cycle import Promotion

        how = f"milton-lora promote {run_id} --to-production"
        why_not = ""

        def confirm() -> bool:
            nonlocal why_not
            if asked_in_advance:
                console.print("--promote-if-candidate: promoting without asking.")
                return True
            if not sys.stdin.isatty():
                why_not = f"not promoted: no terminal to confirm on; promote it with `{how}`"
                return False
            if typer.confirm(f"Promote {run_id} to production?", default=False):
                return True
            why_not = f"declined; {run_id} stays a candidate: promote it later with `{how}`"
            return False

        registry = registry_of(self.settings)
        max_rank = serve_config_of(self.settings).max_lora_rank
        promoted = promote_adapter(self.settings, registry, run_id, max_rank, self.command, False, None, confirm)
        if promoted is None:
            console.print(Text(why_not, style="yellow"))
            return Promotion(promoted=False, outcome=why_not)
        return Promotion(promoted=True, outcome=f"{run_id} is in production")


def print_cycle_plan(plan: CyclePlan) -> None:
    """`cycle --dry-run`: each stage's plan, as `export --dry-run` and `train --dry-run` print theirs."""
    print_rows("Export plan (dry run: nothing written)", plan.export.rows(), justify="right")
    if plan.training is not None:
        print_rows("Training plan (dry run: nothing trained)", plan.training.rows())
        for warning in plan.training.warnings:
            print_warning(warning)
    else:
        print_warning(f"training cannot be planned now: {plan.training_problem}")
    print_rows("Preference stage (after training)", [("preferences", plan.preferences)])
    print_rows("Evaluation plan (the new run)", plan.evaluation)


def print_cycle(log: CycleLog, path: Path) -> None:
    """The cycle at a glance: every stage with its time, the decision, the promotion, the log."""
    table = Table(title=f"Cycle {log.cycle_id}: {log.status} in {log.seconds:.0f} s")
    for column in ("stage", "status", "seconds"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for stage in log.stages:
        table.add_row(stage.name, stage.status, "-" if stage.seconds is None else f"{stage.seconds:.1f}")
    console.print(table)
    if log.decision is not None:
        held = f" (held: {'; '.join(log.decision.held)})" if log.decision.held else ""
        console.print(Text(f"Decision: {log.run_id} is {log.decision.status}{held}"))
    if log.promotion is not None:
        console.print(Text(f"Promotion: {log.promotion.outcome}"))
    console.print(Text(f"Log: {path}"))
