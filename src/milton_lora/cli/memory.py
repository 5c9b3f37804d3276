"""`milton-lora memory import|stats|add|feedback|forget|lineage`: the local conversation store."""

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
    registry_of,
    settings_of,
)
from milton_lora.errors import MiltonError

if TYPE_CHECKING:
    from milton_lora.forgetting import ForgetReport
    from milton_lora.memory.imports import ImportReport


@memory_app.command("import")
def memory_import(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A ChatGPT or claude.ai export (.zip or its .json), or .jsonl.")],
    fmt: Annotated[str, typer.Option("--format", help="auto, chatgpt, claude or openai.")] = "auto",
    strict: Annotated[bool, typer.Option("--strict", help="Import nothing if any record is bad.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the import report as JSON.")] = False,
    include_forgotten: Annotated[
        bool, typer.Option("--include-forgotten", help="Bring back conversations `memory forget` removed.")
    ] = False,
) -> None:
    """Import conversation history into the memory store (idempotent; bad records are skipped and listed;
    forgotten conversations stay forgotten unless --include-forgotten)."""
    from milton_lora.memory import MemoryStore
    from milton_lora.memory.imports import import_file

    settings = settings_of(ctx)
    with MemoryStore(settings.memory_db, include_forgotten=include_forgotten) as store:
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
        ("kept: abandoned replies (regenerations, for preferences)", counts.abandoned_replies_kept),
        ("messages stored", report.messages_imported),
        ("repaired: continued answers joined", counts.continuations_joined),
        ("stripped: tool turns", counts.tool_turns_stripped),
        ("stripped: hidden turns", counts.hidden_turns_stripped),
        ("stripped: citation markers", counts.citation_markers_stripped),
        ("skipped: stored copy is newer", report.stored_is_newer),
        ("skipped: forgotten (memory forget)", report.forgotten),
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


@memory_app.command("feedback")
def memory_feedback(
    ctx: typer.Context,
    conversation: Annotated[str, typer.Argument(help="A conversation number or key (source:source_id).")],
    turn: Annotated[
        int | None, typer.Option(help="The reply's turn number (1 = the first turn); default: the last reply.")
    ] = None,
    rating: Annotated[str | None, typer.Option(help="up or down.")] = None,
    edited: Annotated[str | None, typer.Option(help="The reply as you wanted it.")] = None,
    edited_file: Annotated[Path | None, typer.Option(help="A file holding the reply as you wanted it.")] = None,
) -> None:
    """Judge a stored reply by hand: a thumbs up/down, the text you wanted instead, or both (export turns them
    into preferences.jsonl)."""
    from milton_lora.memory import MemoryStore
    from milton_lora.memory.feedback import give_feedback

    if edited is not None and edited_file is not None:
        raise MiltonError("memory feedback: give --edited or --edited-file, not both")
    if edited_file is not None:
        try:
            edited = edited_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise MiltonError(f"{edited_file}: cannot read the edited reply ({exc})") from None
    with MemoryStore(settings_of(ctx).memory_db) as store:
        stored, number = give_feedback(store, conversation, turn, rating, edited, "cli", datetime.now(timezone.utc))
    said = ", ".join(filter(None, [f"rated {rating}" if rating else "", "edited" if edited is not None else ""]))
    console.print(f"Feedback on turn {number} of {stored.key} (#{stored.id}): {said}", highlight=False)


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=moment.tzinfo or timezone.utc)


@memory_app.command("forget")
def memory_forget(
    ctx: typer.Context,
    ids: Annotated[list[str] | None, typer.Argument(help="Conversation numbers or keys (source:source_id).")] = None,
    search: Annotated[str | None, typer.Option(help="Conversations whose title or any turn holds TEXT.")] = None,
    source: Annotated[str | None, typer.Option(help="Conversations from one source (chatgpt, claude, ...).")] = None,
    since: Annotated[datetime | None, typer.Option(help="Conversations started on or after this date.")] = None,
    until: Annotated[datetime | None, typer.Option(help="Conversations started before this date.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be forgotten; change nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before forgetting what a search matched.")] = False,
) -> None:
    """Forget conversations everywhere they went: the store (no bytes left), exports, runs' training data;
    adapters that learned them are marked tainted. A re-import does not bring them back."""
    from milton_lora.forgetting import forget_everywhere
    from milton_lora.memory import MemoryStore
    from milton_lora.memory.forget import ForgetQuery, select_conversations

    query = ForgetQuery(tuple(ids or ()), search, source, _utc(since), _utc(until))
    settings = settings_of(ctx)
    with MemoryStore(settings.memory_db) as store:
        chosen = select_conversations(store, query)
    rows = [(str(c.id), f"{c.key}  {c.created_at:%Y-%m-%d}  {len(c.messages)} turns  {c.title[:50]}") for c in chosen]
    print_rows(f"{'Would forget' if dry_run else 'Forgetting'} {len(chosen)} conversation(s)", rows, value_header="")
    if dry_run or not chosen:
        return
    if not yes and not ids and not typer.confirm(f"Forget these {len(chosen)} conversation(s) for good?"):
        raise typer.Abort()
    report = forget_everywhere(settings, chosen)
    print_forget_report(report)


def print_forget_report(report: ForgetReport) -> None:
    for warning, line in report.lines():
        if warning:
            print_warning(line)
        else:
            console.print(line, markup=False, highlight=False)


@memory_app.command("lineage")
def memory_lineage(
    ctx: typer.Context,
    conversation: Annotated[str, typer.Argument(help="A conversation key (source:source_id), forgotten or not.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the adapters as JSON.")] = False,
) -> None:
    """Which adapters learned a conversation (ids and dates, no text), also after it was forgotten."""
    from milton_lora.forgetting import adapters_that_learned
    from milton_lora.memory import MemoryStore

    settings = settings_of(ctx)
    with MemoryStore(settings.memory_db) as store:
        key = store.key_of(conversation)
        identity = store.identity_hash(key)
        forgotten = store.is_forgotten(identity)
    found = adapters_that_learned(registry_of(settings), identity)
    if as_json:
        rows = [{"run_id": r, "created_at": c, "how": h} for r, c, h in found]
        console.print_json(json.dumps({"conversation": key, "forgotten": forgotten, "adapters": rows}))
        return
    title = f"Adapters that met {key}" + (" (forgotten)" if forgotten else "")
    print_rows(title, [(r, f"{c[:19]}  {h}") for r, c, h in found] or [("none", "")], value_header="")
