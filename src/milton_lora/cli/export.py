"""`milton-lora export` (= `scripts/export_training_data.py`) and the `milton-lora redact` filter."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from milton_lora.cli.app import app
from milton_lora.cli.common import (
    console,
    err_console,
    print_rows,
    settings_of,
)

if TYPE_CHECKING:
    from milton_lora.export import ExportSummary


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
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Export conversations to redacted train.jsonl / test.jsonl (80/20, stable) and metadata.json."""
    from milton_lora.export import export_training_data

    settings = settings_of(ctx)
    target = output_dir.expanduser().resolve() if output_dir else settings.export_dir
    summary = export_training_data(settings.memory_db, target, days, dry_run=dry_run)
    if as_json:
        console.print_json(json.dumps(summary.as_dict()))
        return
    title = "Export plan (dry run: nothing written)" if dry_run else f"Exported to {target}"
    print_rows(title, export_rows(summary), justify="right")


def export_rows(summary: ExportSummary) -> list[tuple[str, object]]:
    days = summary.window_days
    return [
        ("window", f"last {days} days" if days is not None else "all history"),
        ("conversations in window", summary.conversations_in_window),
        ("skipped (no assistant turn)", summary.skipped_no_assistant),
        ("duplicates dropped", summary.duplicates_dropped),
        ("train conversations", summary.train_conversations),
        ("test conversations", summary.test_conversations),
        ("messages", summary.messages_exported),
        *((f"redacted [{label}]", n) for label, n in summary.redactions.items()),
    ]


@app.command()
def redact(
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help='Read and write one {"text": ...} object per line; other keys kept.')
    ] = False,
    counts: Annotated[bool, typer.Option("--counts", help="Print redaction counts per label on stderr.")] = False,
) -> None:
    """Filter stdin to stdout with PII and secrets replaced by [LABEL] placeholders."""
    from milton_lora.redact import Redactor, redact_jsonl_lines

    redactor = Redactor()
    if jsonl:
        lines, totals = redact_jsonl_lines(redactor, sys.stdin.read().splitlines(), source="stdin")
        sys.stdout.write("".join(line + "\n" for line in lines))
    else:
        result = redactor.redact(sys.stdin.read())
        sys.stdout.write(result.text)
        totals = result.counts
    if counts:
        err_console.print(", ".join(f"{label}: {n}" for label, n in sorted(totals.items())) or "nothing redacted")
