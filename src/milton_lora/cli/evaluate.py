"""`milton-lora eval` (= `scripts/eval_lora.py`): parse the flags, plan, evaluate, print the decision."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from milton_lora.cli.app import app
from milton_lora.cli.common import console, err_console, print_rows, print_warning, registry_of, settings_of
from milton_lora.evaluate.options import EvalOptions

if TYPE_CHECKING:
    from milton_lora.evaluate.result import EvalResult

# Options `cycle` shares with `eval` (`EvalOptions`, whose defaults they show).
DEFAULTS = EvalOptions()
MaxNewTokens = Annotated[int, typer.Option(min=1, help="Longest answer generated per prompt.")]
BatchSize = Annotated[int, typer.Option(min=1, help="Prompts / conversations per batch.")]
JudgeUrl = Annotated[
    str | None, typer.Option(help="OpenAI-compatible judge, e.g. http://127.0.0.1:8000/v1 (vLLM, milton-lora serve).")
]
JudgeModel = Annotated[str | None, typer.Option(help="The judge's model name, as its /v1/models lists it.")]
JudgeApiKeyEnv = Annotated[str | None, typer.Option(help="Environment variable that holds the judge's API key.")]
JudgePrompts = Annotated[int, typer.Option(min=0, help="Held-out conversations to judge (besides the sanity prompts).")]
StylePrompts = Annotated[
    int, typer.Option(min=0, help="Held-out prompts every side answers to measure style match (0: not measured).")
]
AllowRemoteJudge = Annotated[
    bool, typer.Option("--allow-remote-judge", help="Send held-out conversations to a judge on another machine.")
]
JudgeMaxTokens = Annotated[
    int, typer.Option(min=1, help="Longest verdict the judge may write (reasoning, then [[A]]/[[B]]/[[C]]).")
]
PassThreshold = Annotated[
    float | None,
    typer.Option(min=0.0, max=1.0, help="Benchmark pass rate the gate requires (default: gate.yaml, else 0.9)."),
]
BenchmarksFile = Annotated[Path | None, typer.Option(help="Benchmark YAML (default: training/eval/ or shipped).")]
SanityFile = Annotated[Path | None, typer.Option(help="Sanity prompts YAML (default: training/eval/ or shipped).")]


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
    pass_threshold: PassThreshold = None,
    benchmarks: BenchmarksFile = None,
    sanity: SanityFile = None,
    test_file: Annotated[Path | None, typer.Option(help="Held-out JSONL (default: the one training used).")] = None,
    base_model: Annotated[
        Path | None, typer.Option(help="Base model folder (default: the one training recorded).")
    ] = None,
    max_new_tokens: MaxNewTokens = DEFAULTS.max_new_tokens,
    batch_size: BatchSize = DEFAULTS.batch_size,
    judge_url: JudgeUrl = None,
    judge_model: JudgeModel = None,
    judge_api_key_env: JudgeApiKeyEnv = None,
    judge_prompts: JudgePrompts = DEFAULTS.judge_prompts,
    judge_max_tokens: JudgeMaxTokens = DEFAULTS.judge_max_tokens,
    allow_remote_judge: AllowRemoteJudge = False,
    style_prompts: StylePrompts = DEFAULTS.style_prompts,
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics.json to stdout; no tables, no bars.")] = False,
) -> None:
    """Evaluate an adapter against production (or the base): held-out metrics, sanity prompts, benchmarks,
    an optional judge, and the gate to candidate."""
    from milton_lora.evaluate.plan import EvalRequest, plan_evaluation
    from milton_lora.evaluate.progress import Phases
    from milton_lora.evaluate.runner import run_evaluation

    request = EvalRequest(
        run_id=run_id, auto_promote=not no_auto_promote, pass_threshold=pass_threshold, benchmarks=benchmarks,
        sanity=sanity, test_file=test_file, base_model=base_model, max_new_tokens=max_new_tokens,
        batch_size=batch_size, judge_url=judge_url, judge_model=judge_model, judge_api_key_env=judge_api_key_env,
        judge_prompts=judge_prompts, judge_max_tokens=judge_max_tokens, allow_remote_judge=allow_remote_judge,
        style_prompts=style_prompts,
    )  # fmt: skip
    settings = settings_of(ctx)
    registry = registry_of(settings)
    plan = plan_evaluation(settings, registry, request)
    if not as_json:
        print_rows("Evaluation plan" + (" (dry run: nothing evaluated or written)" if dry_run else ""), plan.rows())
    for warning in plan.warnings:
        print_warning(warning)
    if dry_run:
        return
    show_bars = not as_json and err_console.is_terminal
    with Phases(err_console if show_bars else None) as phases:
        result = run_evaluation(plan, registry, phases)
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
        return
    print_evaluation(result, plan.run_dir)


def print_evaluation(result: EvalResult, run_dir: Path) -> None:
    """The summary: metrics, benchmarks side by side, regressions, the judge, the gate, what to look at."""
    print_held_out(result)
    print_benchmarks(result)
    if result.style is not None:
        print_style(result)
    print_preferences(result)
    print_degeneration(result)
    if result.head_to_head is not None:
        print_head_to_head(result)
    print_gate(result)
    print_diagnosis(result)
    judged = ", judgements.jsonl" if result.head_to_head else ""
    styled = ", style_replies.json" if result.style else ""
    console.print(
        Text(
            f"Details: {run_dir}/ (metrics.json, sanity_responses.json{styled}{judged}); "
            f"report: milton-lora report {result.run_id}"
        )
    )


def print_held_out(result: EvalResult) -> None:
    table = Table(title=f"Held-out metrics ({result.test_conversations} conversations, assistant tokens)")
    for column in ("model", "eval loss", "perplexity", "token accuracy"):
        table.add_column(column, justify="left" if column == "model" else "right")
    rows = [("adapter", result.adapter), ("base", result.base)]
    if result.production:
        rows.append((f"production {result.production.run_id}", result.production))
    for name, m in rows:
        table.add_row(name, _number(m.eval_loss, ".4f"), _number(m.perplexity, ".2f"), _number(m.token_accuracy, ".2%"))
    console.print(table)


def print_benchmarks(result: EvalResult) -> None:
    bench, opponent = result.benchmarks, result.opponent.label
    table = Table(
        title=f"Task benchmarks, same tests both sides: adapter {bench.adapter.passed}/{bench.adapter.total}, "
        f"{opponent} {bench.opponent.passed}/{bench.opponent.total}"
    )
    for column in ("category", "adapter", opponent, ""):
        table.add_column(column, justify="left" if column == "category" else "right")
    for name, ours in bench.adapter.by_category.items():
        theirs = bench.opponent.by_category[name]
        mark = "▼ below" if ours.pass_rate < theirs.pass_rate else ("▲" if ours.pass_rate > theirs.pass_rate else "")
        table.add_row(name, f"{ours.passed}/{ours.total}", f"{theirs.passed}/{theirs.total}", mark)
    console.print(table)
    by_id = {r.id: r for r in bench.results}
    for test_id in bench.regressions:
        console.print(
            Text(
                f"  regressed: {test_id} passed with {opponent}, fails now ({by_id[test_id].adapter.detail})",
                style="red",
            )
        )


def print_style(result: EvalResult) -> None:
    """Style match per side, feature by feature (features that do not count for a side show "-")."""
    style = result.style
    assert style is not None
    sides = [("adapter", style.adapter)]
    sides += [("production", style.production)] if style.production else []
    sides += [("base", style.base), ("person (held-out)", style.held_out)]
    table = Table(
        title=f"Sounds like you: style match on {style.prompts} held-out prompts "
        f"(profile of {style.profile.replies} kept replies; 0-1, higher is closer)"
    )
    table.add_column("feature")
    table.add_column("the person")
    for name, _ in sides:
        table.add_column(name, justify="right")
    table.add_row("style match", "", *(f"{m.score:.2f}" for _, m in sides), style="bold")
    names = list(dict.fromkeys(n for _, m in sides for n in m.features))
    for feature in names:
        shown = next(m.features[feature].profile for _, m in sides if feature in m.features)
        cells = [
            f"{m.features[feature].replies} ({m.features[feature].score:.2f})" if feature in m.features else "-"
            for _, m in sides
        ]
        table.add_row(feature, shown, *cells)
    console.print(table)
    if style.judged is not None:
        h = style.judged
        console.print(
            Text(
                f"Which sounds more like your assistant ({h.judge_model}, the person's replies as examples, "
                f"{h.prompts} prompts in both orders): adapter {h.wins} wins, {h.ties} ties, {h.losses} losses "
                f"against {h.opponent}; win rate {h.win_rate:.0%} (95% CI {h.ci_low:.0%}-{h.ci_high:.0%})"
            )
        )


def print_preferences(result: EvalResult) -> None:
    """Preference accuracy per side on the held-out pairs, or that there were none."""
    found = result.preferences
    if found is None:
        console.print(Text("Preferences: no held-out preference pairs in the export; not measured", style="dim"))
        return
    table = Table(
        title=f"Held-out preferences: {found.pairs} pairs (the chosen reply more likely than the rejected one; "
        "reward: gained more over the base, as DPO's implicit reward)"
    )
    for column in ("model", "accuracy", "mean margin (nats)", "reward accuracy", "mean reward margin"):
        table.add_column(column, justify="left" if column == "model" else "right")
    sides = [("adapter", found.adapter)]
    if found.production is not None and result.production is not None:
        sides.append((f"production {result.production.run_id}", found.production))
    sides += [("base", found.base)]
    for name, side in sides:
        table.add_row(name, f"{side.accuracy:.0%}", f"{side.mean_margin:+.2f}", _number(side.reward_accuracy, ".0%"),
                      _number(side.mean_reward_margin, "+.2f"))  # fmt: skip
    console.print(table)


def print_degeneration(result: EvalResult) -> None:
    degenerate = result.degeneration
    if degenerate is not None and (degenerate.adapter or degenerate.opponent):
        console.print(
            Text(
                f"Degenerate answers of {degenerate.answers}: adapter {len(degenerate.adapter)}, "
                f"{result.opponent.label} {len(degenerate.opponent)}",
                style="yellow",
            )
        )


def print_head_to_head(result: EvalResult) -> None:
    h = result.head_to_head
    assert h is not None
    console.print(
        Text(
            f"Judged by {h.judge_model} against {h.opponent}, {h.prompts} prompts in both orders: "
            f"{h.wins} wins, {h.ties} ties, {h.losses} losses; win rate {h.win_rate:.0%} (95% CI {h.ci_low:.0%}-"
            f"{h.ci_high:.0%}); {h.inconsistent} inconsistent, {h.unparsed} unparsed; mean answer length "
            f"{h.mean_chars_adapter:.0f} vs {h.mean_chars_opponent:.0f} characters"
        )
    )


def print_gate(result: EvalResult) -> None:
    table = Table(title="Gate: training → candidate")
    for column in ("criterion", "value", "required", "verdict"):
        table.add_column(column)
    for c in result.gate.criteria:
        verdict = Text("pass", style="green") if c.passed else Text("fail", style="red")
        table.add_row(Text(c.name), Text(c.value), c.required, verdict)
    console.print(table)
    if result.gate.promote:
        verdict = Text("the gate passed", style="green")
    elif not result.gate.passed:
        verdict = Text("held: " + "; ".join(f"{c.name} {c.value}" for c in result.gate.failed()), style="red")
    else:
        verdict = Text("the gate passed, status unchanged (--no-auto-promote)")
    console.print(Text.assemble("Status: ", (result.status, "bold"), " (", verdict, ")"))


def print_diagnosis(result: EvalResult) -> None:
    if not result.diagnosis:
        return
    console.print("[bold]What to look at[/]")
    for finding in result.diagnosis:
        console.print(Text(f"- {finding.signal}: {finding.observed}", style="yellow"))
        console.print(Text("    likely: " + "; ".join(finding.causes)))
        for fix in finding.fixes:
            console.print(Text(f"    try: {fix}"))


def _number(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)
