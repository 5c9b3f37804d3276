"""`milton-lora promote` (= `scripts/promote_adapter.py`): the lifecycle, the confirmation block, hot swap."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from milton_lora.cli.app import app
from milton_lora.cli.common import (
    confirm_or_abort,
    console,
    print_rows,
    print_warning,
    registry_of,
    serve_config_of,
    settings_of,
)
from milton_lora.errors import MiltonError
from milton_lora.settings import Settings

if TYPE_CHECKING:
    from milton_lora.promotion import ServerNews
    from milton_lora.registry import Entry, Registry


@app.command()
def promote(
    ctx: typer.Context,
    run_id: Annotated[
        str | None, typer.Argument(help="The adapter's run id, or latest, latest-candidate, production.")
    ] = None,
    to_production: Annotated[bool, typer.Option("--to-production", help="Make it the production adapter.")] = False,
    archive: Annotated[bool, typer.Option("--archive", help="Archive it.")] = False,
    rollback: Annotated[bool, typer.Option("--rollback", help="Restore the previous production adapter.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="List registered adapters, newest last.")] = False,
    history: Annotated[
        bool, typer.Option("--history", help="Every transition (of RUN_ID, or all): when, from, to, who, why.")
    ] = False,
    serve_commands: Annotated[
        bool,
        typer.Option("--serve-commands", help="The llama.cpp/Ollama commands for the production adapter's exports."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --list or --history: print JSON.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Promote without passing evaluation and without asking.")
    ] = False,
    note: Annotated[
        str | None, typer.Option("--note", help="Why: stored in the registry history (see --history).")
    ] = None,
) -> None:
    """Move adapters through the lifecycle: candidate → production, archive, roll back, list, history."""
    settings = settings_of(ctx)
    registry = registry_of(settings)
    if sum([to_production, archive, rollback, list_, history, serve_commands]) != 1:
        raise MiltonError(
            "promote: choose exactly one of --to-production, --archive, --rollback, --list, --history, --serve-commands"
        )
    if (to_production or archive) and run_id is None:
        raise MiltonError("promote: give the run id to promote or archive (see --list)")
    if list_:
        show_registry(registry, as_json)
        return
    run_id = registry.resolve(run_id) if run_id is not None else None
    if history:
        show_history(registry, run_id, as_json)
        return
    if serve_commands:
        show_serve_commands(registry, run_id or registry.resolve("production"))
        return
    flags = ("--to-production" * to_production, "--archive" * archive, "--rollback" * rollback, "--force" * force)
    command = " ".join(part for part in ("promote", run_id or "", *flags) if part)
    max_rank = serve_config_of(settings).max_lora_rank
    if archive:
        archive_adapter(registry, str(run_id), command, note)
    elif rollback:
        roll_back(settings, registry, max_rank, command, force, note)
    else:
        promote_adapter(settings, registry, str(run_id), max_rank, command, force, note)


def archive_adapter(registry: Registry, run_id: str, command: str, note: str | None) -> None:
    was_production = registry.get(run_id).status == "production"
    entry = registry.archive(run_id, command, note)
    console.print(f"Archived {entry.run_id}.")
    if was_production:
        print_warning("nothing is in production now; a running server keeps serving it until the next promotion")


def roll_back(settings: Settings, registry: Registry, max_rank: int, command: str, force: bool,
              note: str | None) -> None:  # fmt: skip
    from milton_lora import promotion

    current, target = registry.rollback_target()
    console.print(
        f"Rolling back: {current.run_id if current else 'no production adapter'} → {target.run_id} "
        f"(restoring the previous production adapter)"
    )
    confirm_or_abort(force)
    done = promotion.roll_back(settings, registry, max_rank, command, note)
    console.print(
        f"[green]{done.production.run_id} is in production again[/]"
        + (f"; {done.archived.run_id} archived" if done.archived else "")
    )
    print_server_news(done.server)


def promote_adapter(settings: Settings, registry: Registry, run_id: str, max_rank: int, command: str, force: bool,
                    note: str | None, confirm: Callable[[], bool] | None = None) -> Entry | None:  # fmt: skip
    """Check, show the confirmation block, ask (`confirm`, else `Proceed? [y/N]:`), promote, tell a running
    server. Returns the entry now in production, or None when `confirm` said no."""
    from milton_lora import promotion

    entry = registry.get(run_id)
    if entry.status == "production":  # nothing to confirm: the registry stays as it is
        console.print(f"{entry.run_id} is already in production; checking that a running server serves it")
        done = promotion.promote(settings, registry, entry.run_id, max_rank, command, force, note)
        print_server_news(done.server)
        return done.production
    registry.check_promotable(entry, force, max_rank)
    print_promotion_block(entry, registry.load().production(), console)
    if confirm is None:
        confirm_or_abort(force)
    elif not confirm():
        return None
    done = promotion.promote(settings, registry, entry.run_id, max_rank, command, force, note)
    console.print(
        f"[green]{entry.run_id} is now in production[/]"
        + (f"; {done.archived.run_id} archived" if done.archived else "")
    )
    print_server_news(done.server)
    if entry.exports:
        console.print("To run its exports with llama.cpp or Ollama: milton-lora promote --serve-commands")
    return done.production


def print_promotion_block(entry: Entry, current: Entry | None, out: Console) -> None:
    """The confirmation block: what changes, what gets archived, and the evidence."""

    def metric(name: str, fmt: str) -> str:
        value = entry.metrics.get(name)
        return "n/a (not evaluated)" if value is None else format(value, fmt)

    rule = "=" * 60
    pass_rate = "n/a (not evaluated)" if entry.pass_rate is None else f"{entry.pass_rate:.1%}"
    lines = [
        rule,
        "PROMOTE ADAPTER TO PRODUCTION",
        rule,
        f"New adapter:        {entry.run_id}",
        f"Status change:      {entry.status} → production",
        f"Current production: {current.run_id + ' (will be archived)' if current else 'none'}",
        "",
        "Metrics:",
        f"  Perplexity:       {metric('perplexity', '.3f')}",
        f"  Eval loss:        {metric('eval_loss', '.4f')}",
        f"  Token accuracy:   {metric('token_accuracy', '.2%')}",
        f"  Task pass rate:   {pass_rate}",
        rule,
    ]
    out.print("\n".join(lines), highlight=False, markup=False)


def show_registry(registry: Registry, as_json: bool) -> None:
    from milton_lora.registry import latest_note

    entries = list(reversed(registry.load().newest_first()))
    if as_json:
        rows = [
            {"run_id": e.run_id, "status": e.status, "created_at": e.created_at, "pass_rate": e.pass_rate,
             "is_production": e.status == "production", "note": latest_note(e),
             "tainted": e.tainted.model_dump() if e.tainted else None}
            for e in entries
        ]  # fmt: skip
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title=f"Adapters ({registry.path})")
    for column in ("Run ID", "Status", "Created", "Pass Rate", "Note"):
        table.add_column(column)
    for e in entries:
        status = f"★ {e.status}" if e.status == "production" else e.status
        status += " (tainted)" if e.tainted else ""
        rate = "-" if e.pass_rate is None else f"{e.pass_rate:.1%}"
        note = f"tainted: {e.tainted.reason} ({e.tainted.at[:19]})" if e.tainted else latest_note(e) or ""
        table.add_row(e.run_id, status, e.created_at.replace("T", " ")[:19], rate, Text(note))
    console.print(table if entries else "No adapters registered yet; train one with milton-lora train")


def show_history(registry: Registry, run_id: str | None, as_json: bool) -> None:
    rows = registry.history(run_id)
    if as_json:
        records = [{"run_id": rid, **t.model_dump(by_alias=True)} for rid, t in rows]
        sys.stdout.write(json.dumps(records, indent=2) + "\n")
        return
    if not rows:
        console.print("No transitions recorded yet.")
        return
    console.print(f"History of {run_id or 'every adapter'} ({registry.path}), oldest first:")
    for rid, t in rows:  # one line each, so notes are never wrapped or cut
        moved = f"{t.from_status or '(new)'} → {t.to_status}"
        console.print(Text(f"{t.at.replace('T', ' ')[:19]}  {rid}  {moved}  by {t.who or '?'}: {t.note or t.reason}"))


def show_serve_commands(registry: Registry, run_id: str) -> None:
    from milton_lora.adapters.commands import serve_commands

    for line in serve_commands(registry, registry.get(run_id)):
        console.print(Text(line))


def print_server_news(news: ServerNews) -> None:
    """What the hot swap did; the registry change has already happened, so a failed swap is a warning."""
    if news.ok:
        console.print(news.message)
    else:
        print_warning(news.message)


@app.command("lineage")
def lineage_command(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The adapter (a run id, latest, latest-candidate, production).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole lineage (keyed hashes) as JSON.")] = False,
) -> None:
    """What an adapter learned from: its export, replay and parent, as counts and keyed hashes (no text)."""
    from milton_lora.forgetting import lineage_of

    registry = registry_of(settings_of(ctx))
    run_id = registry.resolve(run_id)
    lineage = lineage_of(registry, run_id)
    if as_json:
        sys.stdout.write(json.dumps({"run_id": run_id, **lineage.model_dump()}, indent=2) + "\n")
        return
    entry = registry.get(run_id)
    rows = [
        ("export made", lineage.export_created_at or "-"),
        ("trained on", f"{len(lineage.train) - lineage.replayed} conversations from the export"),
        ("replayed", f"{lineage.replayed} conversations from {lineage.parent or '-'}"),
        ("continued from", lineage.parent or "new weights"),
        ("inherited", f"{len(lineage.inherited)} conversations its parent learned"),
        ("learned in all", f"{len(lineage.learned())} conversations"),
        ("evaluated on", f"{len(lineage.test)} held-out conversations"),
        ("tainted", f"{entry.tainted.reason} ({entry.tainted.at[:19]})" if entry.tainted else "no"),
    ]
    print_rows(f"Lineage of {run_id}", rows)
