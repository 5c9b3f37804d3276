"""The `milton-lora` command line: thin wrappers that parse flags, call a stage's public function and print.

User mistakes raise `MiltonError` anywhere below; `main()` prints them on one line and exits 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

from milton_lora import __version__
from milton_lora.config import TrainConfig, load_model
from milton_lora.errors import MiltonError
from milton_lora.settings import Settings

try:  # recent typer vendors its own click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer uses click itself
    from click.exceptions import ClickException

if TYPE_CHECKING:
    from milton_lora.config import ServeConfig
    from milton_lora.registry import Entry, Registry

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

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def settings_of(ctx: typer.Context) -> Settings:
    return ctx.find_root().obj


def print_rows(
    title: str, rows: Iterable[tuple[str, object]], value_header: str = "value", justify: JustifyMethod = "left"
) -> None:
    """The two-column table most commands print: what, and its value (as plain text, never markup)."""
    table = Table(title=title)
    table.add_column("what")
    table.add_column(value_header, justify=justify)
    for name, value in rows:
        table.add_row(name, Text(str(value)))
    console.print(table)


def print_warning(message: str) -> None:
    err_console.print(Text("warning: ", style="bold yellow") + Text(message))


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
    rows = [(key.replace("_", " "), value) for key, value in report.as_dict().items() if key not in ("path", "format")]
    print_rows(f"Imported {path.name} ({report.format})", rows, value_header="count", justify="right")


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


# --- export ------------------------------------------------------------------------------------


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
    print_rows(title, rows, justify="right")


# --- train ---------------------------------------------------------------------------------------


@app.command()
def train(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", help="Training YAML; a bare name resolves in training/configs/.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Run the safety checks, print the plan, train nothing.")
    ] = False,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Continue an interrupted run from its last checkpoint.")
    ] = None,
) -> None:
    """Train a LoRA adapter from exported conversations and register it as `training`."""
    from milton_lora.train.checks import make_plan, new_run_id, resolve_config_path

    settings = settings_of(ctx)
    if resume is not None:
        from milton_lora.registry import validate_run_id

        run_id = validate_run_id(resume)
        config_path = settings.runs_dir / run_id / "config.yaml"
        if not config_path.exists():
            raise MiltonError(f"{config_path}: not found; --resume takes the run id of an interrupted run")
    elif config is None:
        raise MiltonError("train: pass --config (e.g. --config training/configs/lora_default.yaml)")
    else:
        config_path = resolve_config_path(settings, config)
    train_config = load_model(config_path, TrainConfig)
    cuda, cuda_bf16 = accelerator_support()
    if resume is None:
        run_id = agree_across_processes(
            new_run_id(
                train_config.run_name_prefix,
                [settings.resolve(train_config.adapters_dir), settings.resolve(train_config.runs_dir)],
                datetime.now(),
            )
        )
    plan = make_plan(settings, train_config, config_path, run_id, cuda, cuda_bf16)
    print_rows("Training plan" + (" (dry run: nothing trained)" if dry_run else ""), plan.rows())
    for warning in plan.warnings:
        print_warning(warning)
    if dry_run:
        return
    from milton_lora.registry import Registry
    from milton_lora.train.runner import run_training

    result = run_training(plan, resume=resume is not None)
    if not result.metadata:
        return  # not the main process of a distributed run
    Registry(settings.registry_path, plan.adapter_dir.parent, plan.run_dir.parent).register(
        plan.run_id, str(plan.base_model), f"train --config {config_path}"
    )
    print_training_summary(result.metadata, plan.adapter_dir, plan.run_dir)


def accelerator_support() -> tuple[bool, bool]:
    """(CUDA available, CUDA with fast bf16), initialising a distributed group when launched by torchrun."""
    import torch
    from accelerate import PartialState

    cuda = torch.cuda.is_available()
    PartialState(cpu=not cuda)
    return cuda, cuda and torch.cuda.is_bf16_supported()


def agree_across_processes(value: str) -> str:
    """Rank 0's value on every rank, so all processes of a torchrun job write the same run."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return str(holder[0])


def print_training_summary(metadata: dict, adapter_dir: Path, run_dir: Path) -> None:
    results = metadata["results"]

    def loss(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    rows = [
        ("steps", str(results["global_steps"])),
        ("final train loss", loss(results["final_train_loss"])),
        ("final eval loss", loss(results["final_eval_loss"])),
        ("tokens seen", f"{results['tokens_seen']:,} ({results['tokens_per_second']:,} tok/s)"),
        ("trainable parameters", f"{metadata['trainable_parameters']:,} of {metadata['total_parameters']:,}"),
        ("time", f"{metadata['timings']['train_seconds']} s"),
        ("adapter", str(adapter_dir)),
        ("TensorBoard", f"tensorboard --logdir {run_dir / 'logs'}"),
        ("next", f"python scripts/eval_lora.py --run-id {metadata['run_id']}"),
    ]
    print_rows(f"Trained {metadata['run_id']} (status: training)", rows)


# --- evaluate ------------------------------------------------------------------------------------


@app.command("eval")
def evaluate(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Option("--run-id", help="The adapter to evaluate (lora_YYYYMMDD_HHMMSS).")],
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
    from milton_lora.registry import validate_run_id

    settings = settings_of(ctx)
    registry = registry_of(settings)
    adapter_dir = registry.adapter_dir(validate_run_id(run_id))
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


# --- registry ----------------------------------------------------------------------------------


def registry_of(settings: Settings) -> Registry:
    from milton_lora.registry import Registry

    return Registry.of(settings)


def serve_config_of(settings: Settings) -> ServeConfig:
    from milton_lora.config import ServeConfig

    return load_model(settings.serve_config_path, ServeConfig, defaults_if_missing=True)


@app.command()
def promote(
    ctx: typer.Context,
    run_id: Annotated[str | None, typer.Argument(help="The adapter's run id (lora_YYYYMMDD_HHMMSS).")] = None,
    to_production: Annotated[bool, typer.Option("--to-production", help="Make it the production adapter.")] = False,
    archive: Annotated[bool, typer.Option("--archive", help="Archive it.")] = False,
    rollback: Annotated[bool, typer.Option("--rollback", help="Restore the previous production adapter.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="List registered adapters, newest last.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --list: print a JSON array.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Promote without passing evaluation and without asking.")
    ] = False,
) -> None:
    """Move adapters through the lifecycle: candidate → production, archive, roll back, list."""
    settings = settings_of(ctx)
    registry = registry_of(settings)
    actions = [to_production, archive, rollback, list_]
    if sum(actions) != 1:
        raise MiltonError("promote: choose exactly one of --to-production, --archive, --rollback, --list")
    if (to_production or archive) and run_id is None:
        raise MiltonError("promote: give the run id to promote or archive (see --list)")
    if list_:
        show_registry(registry, as_json)
        return
    command = "promote " + " ".join(
        part
        for part in (run_id or "", "--to-production" * to_production, "--archive" * archive,
                     "--rollback" * rollback, "--force" * force)
        if part
    )  # fmt: skip
    max_rank = serve_config_of(settings).max_lora_rank
    if archive:
        was_production = registry.get(str(run_id)).status == "production"
        entry = registry.archive(str(run_id), command)
        console.print(f"Archived {entry.run_id}.")
        if was_production:
            print_warning("nothing is in production now; a running server keeps serving it until the next promotion")
    elif rollback:
        current, target = registry.rollback_target()
        console.print(
            f"Rolling back: {current.run_id if current else 'no production adapter'} → {target.run_id} "
            f"(restoring the previous production adapter)"
        )
        confirm_or_abort(force)
        current, target = registry.rollback(max_rank, command)
        console.print(
            f"[green]{target.run_id} is in production again[/]" + (f"; {current.run_id} archived" if current else "")
        )
        notify_server(settings)
    else:
        entry = registry.get(str(run_id))
        registry.check_promotable(entry, force, max_rank)
        print_promotion_block(entry, registry.load().production(), console)
        confirm_or_abort(force)
        previous = registry.promote_to_production(entry.run_id, force, max_rank, command)
        console.print(
            f"[green]{entry.run_id} is now in production[/]" + (f"; {previous.run_id} archived" if previous else "")
        )
        notify_server(settings)


def print_promotion_block(entry: Entry, current: Entry | None, out: Console) -> None:
    """The seed's confirmation block: what changes, what gets archived, and the evidence."""

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


def confirm_or_abort(force: bool) -> None:
    """Ask `Proceed? [y/N]:`; anything but y/yes aborts. Without a terminal, only --force proceeds."""
    if force:
        console.print("--force: proceeding without asking.")
        return
    if not sys.stdin.isatty():
        raise MiltonError("no terminal to confirm on; re-run interactively or pass --force")
    answer = console.input("Proceed? [y/N]: ", markup=False).strip().lower()
    if answer not in ("y", "yes"):
        raise MiltonError("aborted; nothing changed")


def show_registry(registry: Registry, as_json: bool) -> None:
    entries = sorted(registry.load().adapters.values(), key=lambda e: (e.created_at, e.run_id))
    if as_json:
        rows = [
            {"run_id": e.run_id, "status": e.status, "created_at": e.created_at, "pass_rate": e.pass_rate,
             "is_production": e.status == "production"}
            for e in entries
        ]  # fmt: skip
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title=f"Adapters ({registry.path})")
    for column in ("Run ID", "Status", "Created", "Pass Rate"):
        table.add_column(column)
    for e in entries:
        status = f"★ {e.status}" if e.status == "production" else e.status
        rate = "-" if e.pass_rate is None else f"{e.pass_rate:.1%}"
        table.add_row(e.run_id, status, e.created_at.replace("T", " ")[:19], rate)
    console.print(table if entries else "No adapters registered yet; train one with scripts/train_lora.py")


def notify_server(settings: Settings) -> None:
    """Tell a running server about the new production adapter (a no-op when none runs).

    The registry change has already happened, so a failed swap is a warning, not a failure.
    """
    from milton_lora.serve.server import hot_swap
    from milton_lora.settings import env_api_key

    try:
        console.print(hot_swap(settings, registry_of(settings), env_api_key()))
    except MiltonError as exc:
        print_warning(f"{exc}; restart the server to serve it")


# --- serve ---------------------------------------------------------------------------------------

server_app = typer.Typer(help="Start, stop or check the background server (what scripts/start_all.sh runs).")
app.add_typer(server_app, name="server")


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address (default from serve.yaml: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from serve.yaml: 8000).")] = None,
    capture: Annotated[
        bool | None, typer.Option("--capture/--no-capture", help="Store served conversations in memory.")
    ] = None,
) -> None:
    """Serve the production adapter as `milton` through an OpenAI-compatible API (foreground)."""
    from milton_lora.serve.runtime import run_server

    settings = settings_of(ctx)
    config = serve_config_of(settings)
    overrides = {k: v for k, v in {"host": host, "port": port, "capture": capture}.items() if v is not None}
    run_server(settings, config.model_copy(update=overrides), registry_of(settings))


@server_app.command("start")
def server_start(
    ctx: typer.Context,
    timeout: Annotated[float, typer.Option(help="Seconds to wait until the server answers /health.")] = 300,
) -> None:
    """Start `milton-lora serve` in the background; wait until it is healthy."""
    from milton_lora.serve.runtime import start_background

    console.print(start_background(settings_of(ctx), serve_config_of(settings_of(ctx)), timeout))


@server_app.command("stop")
def server_stop(ctx: typer.Context) -> None:
    """Stop the background server."""
    from milton_lora.serve.runtime import stop_background

    console.print(stop_background(settings_of(ctx)))


@server_app.command("status")
def server_status(ctx: typer.Context) -> None:
    """Say whether a server runs, where, and what `milton` answers with."""
    from milton_lora.serve.server import ServerState

    state = ServerState.read(settings_of(ctx).serve_state_path)
    if state is None:
        console.print("not running")
        raise typer.Exit(3)
    console.print(f"running at {state.url} (pid {state.pid}, {state.backend}); milton → {state.production}")


# --- report --------------------------------------------------------------------------------------


@app.command()
def report(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run to report on.")],
) -> None:
    """Write runs/<run_id>/report.html: loss curves, metrics vs base and production, benchmarks, sanity answers."""
    from milton_lora.report import write_report

    registry = registry_of(settings_of(ctx))
    path = write_report(run_id, registry.run_dir(run_id), registry.adapter_dir(run_id))
    console.print(f"Report written to {path}")


@app.command("config-reference")
def config_reference_command() -> None:
    """Print every training and serving config key with its default (the README's reference is this output)."""
    from milton_lora.config import full_reference

    sys.stdout.write(full_reference())


# --- demo ----------------------------------------------------------------------------------------


@app.command()
def demo(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port for the demo server.")] = 8765,
) -> None:
    """The whole loop on a tiny local model and sample conversations, in a throwaway --home (default demo/)."""
    from milton_lora.demo import run_demo

    run_demo(settings_of(ctx), port, console)


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
    except ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("Aborted.")
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)


def run_script(command: str) -> None:
    """Entry for the seed's `scripts/*.py`: the same CLI with the sub-command filled in."""
    main([command, *sys.argv[1:]])
