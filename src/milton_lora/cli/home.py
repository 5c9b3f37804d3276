"""`milton-lora init [DIR]`: set up a MILTON_HOME and say what to run next; `milton-lora health`: check its modes."""

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
    from milton_lora.fileio import loose_modes
    from milton_lora.home import init_home
    from milton_lora.settings import Settings

    settings = Settings.from_env(directory) if directory is not None else settings_of(ctx)
    result = init_home(settings, base_model.expanduser().resolve() if base_model else None)
    console.print(f"MILTON_HOME: {result.home}", highlight=False)
    for path in result.created:
        console.print(f"  created {path.relative_to(result.home)}", highlight=False)
    for path in result.kept:
        console.print(f"  kept    {path.relative_to(result.home)} (exists)", highlight=False)
    if loose_modes(result.home):
        console.print("[yellow]warning:[/] some files here are readable by others; run: milton-lora health --fix")
    console.print("Next:", highlight=False)
    for line in result.next_steps:
        console.print(f"  {line}", highlight=False, markup=False)


@app.command()
def health(
    ctx: typer.Context,
    fix: Annotated[bool, typer.Option("--fix", help="Make every file 600 and every folder 700 (owner-only).")] = False,
) -> None:
    """Check that MILTON_HOME is private: warn about what group or others may read (exit 1), or --fix it."""
    from milton_lora.fileio import loose_modes, make_private

    home = settings_of(ctx).home
    if fix:
        changed = make_private(home)
        console.print(f"{home}: owner-only now ({len(changed)} path(s) tightened)", highlight=False)
        return
    loose = loose_modes(home)
    if not loose:
        console.print(f"{home}: private (every file and folder owner-only)", highlight=False)
        return
    console.print(f"[yellow]warning:[/] {len(loose)} path(s) under {home} are readable by others:", highlight=False)
    for path in loose[:10]:
        console.print(f"  {oct(path.lstat().st_mode & 0o777)[2:]}  {path}", highlight=False, markup=False)
    if len(loose) > 10:
        console.print(f"  ... and {len(loose) - 10} more", highlight=False)
    console.print("Fix: milton-lora health --fix", highlight=False)
    raise typer.Exit(1)
