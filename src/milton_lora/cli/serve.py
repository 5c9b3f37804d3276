"""`milton-lora serve` and `milton-lora server start|stop|status` (= `scripts/start_all.sh`/`stop_all.sh`)."""

from __future__ import annotations

from typing import Annotated

import typer

from milton_lora.cli.app import app, server_app
from milton_lora.cli.common import (
    console,
    registry_of,
    serve_config_of,
    settings_of,
)


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
    config = config.model_copy(update=overrides)
    mounts = {}
    if config.ui:
        from milton_lora.settings import env_api_key
        from milton_lora.ui.app import create_ui
        from milton_lora.ui.pages import PREFIX

        mounts[PREFIX] = create_ui(settings, env_api_key(), config.max_lora_rank, config.host)
    run_server(settings, config, registry_of(settings), mounts)


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
    from milton_lora.serve.state import ServerState

    state = ServerState.read(settings_of(ctx).serve_state_path)
    if state is None:
        console.print("not running")
        raise typer.Exit(3)
    console.print(f"running at {state.url} (pid {state.pid}, {state.backend}); milton → {state.production}")
