"""`milton-lora export` (= `scripts/export_training_data.py`), its `--review`, and the `milton-lora redact` filter."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from milton_lora.cli.app import app
from milton_lora.cli.common import (
    console,
    err_console,
    print_rows,
    redactor_of,
    settings_of,
)

if TYPE_CHECKING:
    from milton_lora.export import ExportReview, ExportSummary


@app.command()
def export(
    ctx: typer.Context,
    days: Annotated[
        int | None, typer.Option(help="Only conversations active in the last N days (default: all).")
    ] = None,
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", help="Where to write (default: training/data/exported/).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the summary; write nothing.")] = False,
    review: Annotated[
        bool, typer.Option("--review", help="Show each redaction in context (paged); write nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary (or the review) as JSON.")] = False,
    restate_facts: Annotated[
        bool,
        typer.Option(
            "--restate-facts",
            help="Add the facts you state about yourself, restated by the base model in the assistant's voice, to "
            "the train split (export.yaml: restate_facts).",
        ),
    ] = False,
    config: Annotated[
        Path,
        typer.Option("--config", help="With --restate-facts: the training YAML whose base_model_path restates."),
    ] = Path("lora_default.yaml"),
) -> None:
    """Export conversations to redacted train.jsonl / test.jsonl (80/20, stable) and metadata.json."""
    from milton_lora.export import export_options_of, export_training_data, review_export

    settings = settings_of(ctx)
    redactor, options = redactor_of(settings), export_options_of(settings)
    restating = (restate_facts or options.restate_facts) and not (review or dry_run)
    if review:
        result = review_export(settings.memory_db, days, redactor=redactor, options=options)
        if as_json:
            console.print_json(json.dumps(result.as_dict(), ensure_ascii=False))
        else:
            _print_review(result, days)
        return
    target = output_dir.expanduser().resolve() if output_dir else settings.export_dir

    def exported() -> ExportSummary:
        return export_training_data(settings.memory_db, target, days, dry_run=dry_run, redactor=redactor,
                                    options=options)  # fmt: skip

    if restating:
        from milton_lora.restate import export_then_restate
        from milton_lora.train.checks import base_model_of

        summary = export_then_restate(exported, base_model_of(settings, config), options.restate_max_facts)
    else:
        summary = exported()
    if as_json:
        console.print_json(json.dumps(summary.as_dict()))
        return
    title = "Export plan (dry run: nothing written)" if dry_run else f"Exported to {target}"
    print_rows(title, summary.rows(), justify="right")
    for line in (*(f"repaired {item}" for item in summary.repaired), *(f"skipped {item}" for item in summary.skipped)):
        err_console.print(Text(line, style="dim"))


def _print_review(result: ExportReview, days: int | None) -> None:
    """Counts per label, then each redaction: where, its label, and the value between already-redacted context."""
    window = f"last {days} days" if days is not None else "all history"
    with console.pager(styles=True):
        print_rows(
            f"Review ({window}; nothing written): {len(result.items)} redactions in {result.messages} messages "
            f"of {result.conversations} conversations",
            [(f"[{label}]", n) for label, n in result.counts.items()],
            value_header="redactions",
            justify="right",
        )
        for item in result.items:
            line = Text(f"[{item.label}] ", style="bold")
            line.append(f"{item.title or item.conversation} · message {item.message} ({item.role})", style="dim")
            console.print(line)
            shown = Text("    …")
            shown.append(_one_line(item.before))
            shown.append(f"«{_one_line(item.value)}»", style="bold reverse")
            shown.append(_one_line(item.after))
            shown.append("…")
            console.print(shown)


def _one_line(text: str) -> str:
    return text.replace("\r", "").replace("\n", " ⏎ ")


@app.command()
def redact(
    ctx: typer.Context,
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help='Read and write one {"text": ...} object per line; other keys kept.')
    ] = False,
    counts: Annotated[bool, typer.Option("--counts", help="Print redaction counts per label on stderr.")] = False,
) -> None:
    """Filter stdin to stdout with PII and secrets replaced by [LABEL] placeholders (and your redact.yaml terms)."""
    from milton_lora.redact import redact_jsonl_lines

    redactor = redactor_of(settings_of(ctx))
    if jsonl:
        lines, totals = redact_jsonl_lines(redactor, sys.stdin.read().splitlines(), source="stdin")
        sys.stdout.write("".join(line + "\n" for line in lines))
    else:
        result = redactor.redact(sys.stdin.read())
        sys.stdout.write(result.text)
        totals = result.counts
    if counts:
        err_console.print(", ".join(f"{label}: {n}" for label, n in sorted(totals.items())) or "nothing redacted")
