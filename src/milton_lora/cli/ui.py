"""`milton-lora ui`: the local dashboard in the browser."""

from __future__ import annotations

from typing import Annotated

import typer

from milton_lora.cli.app import app
from milton_lora.cli.common import console, serve_config_of, settings_of


@app.command()
def ui(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Bind address; another than loopback needs MILTON_SERVE_API_KEY.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8080,
) -> None:
    """Open the dashboard: adapters, runs and their curves, comparisons, promotion and rollback, memory."""
    from milton_lora.settings import env_api_key
    from milton_lora.ui.app import run_ui

    settings = settings_of(ctx)
    run_ui(settings, host, port, serve_config_of(settings).max_lora_rank, env_api_key(),
           lambda url: console.print(f"Milton LoRA dashboard: {url} (Ctrl+C stops it)"))  # fmt: skip
