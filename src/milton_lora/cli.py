"""The `milton-lora` command line: thin wrappers that parse flags, call a stage's public function and print.

User mistakes raise `MiltonError` anywhere below; `main()` prints them on one line and exits 1.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from milton_lora import __version__
from milton_lora.errors import MiltonError
from milton_lora.settings import Settings

app = typer.Typer(
    name="milton-lora",
    help="Turn your own assistant conversations into a personal LoRA adapter, safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
memory_app = typer.Typer(
    help="The local conversation store: import history, add turns, show stats.", no_args_is_help=True
)
app.add_typer(memory_app, name="memory")

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


def settings_of(ctx: typer.Context) -> Settings:
    return ctx.find_root().obj


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[
        Path | None, typer.Option("--home", help="Milton home (default: $MILTON_HOME, else the current directory).")
    ] = None,
) -> None:
    ctx.obj = Settings.from_env(home)


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


@app.command("tiny-model")
def tiny_model(
    directory: Annotated[Path, typer.Argument(help="Folder to write the model into.")],
    size: Annotated[str, typer.Option(help="tiny (tests), small (benchmarks) or base.")] = "tiny",
    seed: Annotated[int, typer.Option(help="Seed for the random weights.")] = 0,
) -> None:
    """Build a small random Llama-architecture model with a locally trained tokenizer (no downloads)."""
    from milton_lora.tiny_model import build_tiny_model

    build_tiny_model(directory, size=size, seed=seed)
    console.print(f"Tiny {size} model written to {directory}")


# --- memory ------------------------------------------------------------------------------------


@memory_app.command("import")
def memory_import(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="conversations.json, a ChatGPT export .zip, or OpenAI .jsonl.")],
    fmt: Annotated[str, typer.Option("--format", help="auto, chatgpt, claude or openai.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the import report as JSON.")] = False,
) -> None:
    """Import conversation history into the memory store (idempotent; all or nothing per file)."""
    from milton_lora.memory import MemoryStore
    from milton_lora.memory.importers import import_file

    settings = settings_of(ctx)
    with MemoryStore(settings.memory_db) as store:
        report = import_file(store, path, fmt)
    if as_json:
        console.print_json(json.dumps(report.as_dict()))
        return
    table = Table(title=f"Imported {path.name} ({report.format})")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, value in report.as_dict().items():
        if key not in ("path", "format"):
            table.add_row(key.replace("_", " "), str(value))
    console.print(table)


@memory_app.command("stats")
def memory_stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Count conversations and messages, and show the date range."""
    from milton_lora.memory import MemoryStore

    with MemoryStore(settings_of(ctx).memory_db) as store:
        stats = store.stats()
    if as_json:
        console.print_json(json.dumps(stats))
        return
    table = Table(title="Memory store")
    table.add_column("what")
    table.add_column("value")
    for key, value in stats.items():
        table.add_row(key.replace("_", " "), Text(json.dumps(value) if isinstance(value, dict) else str(value)))
    console.print(table)


@memory_app.command("add")
def memory_add(
    ctx: typer.Context,
    role: Annotated[str, typer.Option(help="system, user or assistant.")],
    conversation: Annotated[str, typer.Option(help="Conversation key; created on first use.")],
    content: Annotated[str | None, typer.Argument(help="The turn's text (default: read stdin).")] = None,
    title: Annotated[str, typer.Option(help="Title for a new conversation.")] = "",
) -> None:
    """Append one turn to a conversation: how a live assistant logs to memory."""
    from milton_lora.memory import MemoryStore, Message

    text = content if content is not None else sys.stdin.read()
    if not text.strip():
        raise MiltonError("memory add: the turn is empty; pass the text as an argument or on stdin")
    if role not in ("system", "user", "assistant"):
        raise MiltonError(f"memory add: --role '{role}' is not one of system, user, assistant")
    with MemoryStore(settings_of(ctx).memory_db) as store:
        conversation_id = store.append_message(
            "milton", conversation, Message(role, text, datetime.now(timezone.utc)), title=title
        )
    console.print(f"Added {role} turn to conversation {conversation} (#{conversation_id})")


# --- export ------------------------------------------------------------------------------------


@app.command()
def export(
    ctx: typer.Context,
    days: Annotated[int | None, typer.Option(help="Only conversations active in the last N days (default: all).")] = None,
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
    table = Table(title=title)
    table.add_column("what")
    table.add_column("value", justify="right")
    window = f"last {days} days" if days is not None else "all history"
    rows = [
        ("window", window),
        ("conversations in window", summary.conversations_in_window),
        ("skipped (no assistant turn)", summary.skipped_no_assistant),
        ("duplicates dropped", summary.duplicates_dropped),
        ("train conversations", summary.train_conversations),
        ("test conversations", summary.test_conversations),
        ("messages", summary.messages_exported),
        *((f"redacted [{label}]", n) for label, n in summary.redactions.items()),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)


# --- redact ------------------------------------------------------------------------------------


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


# --- entry points ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user mistakes become one red line on stderr and exit status 1, never a traceback."""
    try:
        result = app(args=argv, prog_name="milton-lora", standalone_mode=False)
    except MiltonError as exc:
        err_console.print(Text("error: ", style="bold red") + Text(str(exc)))
        sys.exit(exc.exit_code)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err_console.print("Aborted.")
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)


def run_script(command: str) -> None:
    """Entry for the seed's `scripts/*.py`: the same CLI with the sub-command filled in."""
    main([command, *sys.argv[1:]])
