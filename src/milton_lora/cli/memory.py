"""`milton-lora memory import|stats|add`: the local conversation store."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from milton_lora.cli.app import memory_app
from milton_lora.cli.common import (
    console,
    print_rows,
    print_warning,
    settings_of,
)
from milton_lora.errors import MiltonError

if TYPE_CHECKING:
    from milton_lora.memory.imports import ImportReport


@memory_app.command("import")
def memory_import(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A ChatGPT or claude.ai export (.zip or its .json), or .jsonl.")],
    fmt: Annotated[str, typer.Option("--format", help="auto, chatgpt, claude or openai.")] = "auto",
    strict: Annotated[bool, typer.Option("--strict", help="Import nothing if any record is bad.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the import report as JSON.")] = False,
) -> None:
    """Import conversation history into the memory store (idempotent; bad records are skipped and listed)."""
    from milton_lora.memory import MemoryStore
    from milton_lora.memory.imports import import_file

    settings = settings_of(ctx)
    with MemoryStore(settings.memory_db) as store:
        report = import_file(store, path, fmt, strict=strict)
    if as_json:
        console.print_json(json.dumps(report.as_dict(), ensure_ascii=False))
        return
    print_rows(f"Imported {path.name} ({report.format})", import_rows(report), value_header="count", justify="right")
    for problem in report.problems:
        print_warning(f"skipped {problem}")


def import_rows(report: ImportReport) -> list[tuple[str, object]]:
    """The report by the README's words: what was kept, repaired, stripped and skipped."""
    counts = report.counts
    return [
        ("conversations in file", report.records_in_file),
        ("kept: new", report.imported),
        ("kept: updated (changed since the last import)", report.updated),
        ("kept: unchanged", report.unchanged),
        ("kept: attachments", counts.attachments_kept),
        ("messages stored", report.messages_imported),
        ("repaired: continued answers joined", counts.continuations_joined),
        ("stripped: tool turns", counts.tool_turns_stripped),
        ("stripped: hidden turns", counts.hidden_turns_stripped),
        ("stripped: citation markers", counts.citation_markers_stripped),
        ("skipped: stored copy is newer", report.stored_is_newer),
        ("skipped: empty conversations", counts.empty_conversations_skipped),
        ("skipped: repeated in file", report.repeated_in_file),
        ("skipped: bad records", len(report.problems)),
    ]


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
    rows = [
        (key.replace("_", " "), json.dumps(value) if isinstance(value, dict) else value) for key, value in stats.items()
    ]
    print_rows("Memory store", rows)


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
