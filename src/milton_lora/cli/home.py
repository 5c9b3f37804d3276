"""`milton-lora init [DIR]`: set up a MILTON_HOME and say what to run next."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from milton_lora.cli.app import app
from milton_lora.cli.common import console, settings_of


@app.command()
def init(
    ctx: typer.Context,
    directory: Annotated[
        Path | None, typer.Argument(help="The home to create (default: --home, $MILTON_HOME or the current directory).")
    ] = None,
    base_model: Annotated[
        Path | None, typer.Option("--base-model", help="Base model folder to write into the training configs.")
    ] = None,
) -> None:
    """Create a MILTON_HOME: memory store, training configs, eval suites, serve.yaml, redact.yaml (never overwrites)."""
    from milton_lora.home import init_home
    from milton_lora.settings import Settings

    settings = Settings.from_env(directory) if directory is not None else settings_of(ctx)
    result = init_home(settings, base_model.expanduser().resolve() if base_model else None)
    console.print(f"MILTON_HOME: {result.home}", highlight=False)
    for path in result.created:
        console.print(f"  created {path.relative_to(result.home)}", highlight=False)
    for path in result.kept:
        console.print(f"  kept    {path.relative_to(result.home)} (exists)", highlight=False)
    console.print("Next:", highlight=False)
    for line in result.next_steps:
        console.print(f"  {line}", highlight=False, markup=False)
