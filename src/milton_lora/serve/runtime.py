"""Process management: run a server in the foreground, or start/stop one in the background.

Background servers keep a pid file (`runs/server/server.pid`) and a log (`logs/server.log`); start
waits until `/health` answers and is idempotent, stop is too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

from milton_lora.config import ServeConfig
from milton_lora.errors import MiltonError
from milton_lora.registry import Entry, Registry
from milton_lora.serve.server import (
    VLLM_ENV,
    ServerState,
    base_model_for,
    capture_to_memory,
    pid_alive,
    versioned_name,
    vllm_command,
)
from milton_lora.settings import Settings, env_api_key


def connect_url(config: ServeConfig) -> str:
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    return f"http://{host}:{config.port}"


def run_server(settings: Settings, config: ServeConfig, registry: Registry) -> None:
    """Serve in the foreground until interrupted; writes the state file while running."""
    import uvicorn

    running = ServerState.read(settings.serve_state_path)
    if running is not None:
        raise MiltonError(f"a server already runs at {running.url} (pid {running.pid}); stop it first")
    production = registry.load().production()
    base = base_model_for(config, settings, production)
    served = versioned_name(production.run_id) if production else None
    api_key = env_api_key()
    vllm = None
    if config.backend == "embedded":
        app = _embedded_app(settings, config, registry, base, production, served, api_key)
    else:
        app, vllm = _vllm_app(settings, config, registry, base, production, served, api_key)
    state = ServerState(os.getpid(), connect_url(config), config.backend, production.run_id if production else None,
                        served, datetime.now(timezone.utc).isoformat(timespec="seconds"))  # fmt: skip
    state.write(settings.serve_state_path)
    try:
        uvicorn.run(app, host=config.host, port=config.port, log_level="warning")
    finally:
        settings.serve_state_path.unlink(missing_ok=True)
        if vllm is not None:
            vllm.terminate()


def _embedded_app(settings: Settings, config: ServeConfig, registry: Registry, base: Path,
                  production: Entry | None, served: str | None, api_key: str | None):  # type: ignore[no-untyped-def]  # fmt: skip
    from milton_lora.serve.app import create_app
    from milton_lora.serve.engine import Engine

    engine = Engine.start(base, config.base_model_name)
    if production and served:
        engine.load(served, registry.path_of(production.adapter_path))
        engine.point_alias(served)

    def find_adapter(name: str) -> Path | None:
        try:
            return registry.path_of(registry.get(name).adapter_path)
        except MiltonError:
            return None

    capture = capture_to_memory(settings.memory_db) if config.capture else None
    return create_app(engine, api_key, capture, find_adapter)


def _vllm_app(settings: Settings, config: ServeConfig, registry: Registry, base: Path,
              production: Entry | None, served: str | None, api_key: str | None):  # type: ignore[no-untyped-def]  # fmt: skip
    """vLLM on the next port, our proxy (which adds the `milton` alias) on the configured one."""
    from milton_lora.serve.app import create_proxy_app

    if production is None or served is None:
        raise MiltonError("backend vllm: promote an adapter to production first")
    upstream_port = config.port + 1
    command = vllm_command(config, base, served, registry.path_of(production.adapter_path), upstream_port)
    log = (settings.home / "logs").joinpath("vllm.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        process = subprocess.Popen(command, env={**os.environ, **VLLM_ENV}, stdout=log.open("ab"),
                                   stderr=subprocess.STDOUT)  # fmt: skip
    except FileNotFoundError:
        raise MiltonError("backend vllm: the `vllm` command is not installed (pip install vllm)") from None
    _wait_healthy(f"http://127.0.0.1:{upstream_port}", 900, log, process)
    return create_proxy_app(f"http://127.0.0.1:{upstream_port}", served, api_key), process


# --- background --------------------------------------------------------------------------------


def pid_file(settings: Settings) -> Path:
    return settings.serve_state_path.parent / "server.pid"


def log_file(settings: Settings) -> Path:
    return settings.home / "logs" / "server.log"


def start_background(settings: Settings, config: ServeConfig, timeout: float) -> str:
    running = ServerState.read(settings.serve_state_path)
    if running is not None:
        return f"already running at {running.url} (pid {running.pid})"
    log = log_file(settings)
    log.parent.mkdir(parents=True, exist_ok=True)
    pid_file(settings).parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "milton_lora", "--home", str(settings.home), "serve"],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    pid_file(settings).write_text(f"{process.pid}\n")
    _wait_healthy(connect_url(config), timeout, log, process)
    return f"started at {connect_url(config)} (pid {process.pid}); log: {log}"


def stop_background(settings: Settings, grace: float = 30.0) -> str:
    path = pid_file(settings)
    state = ServerState.read(settings.serve_state_path)
    pid = state.pid if state else _read_pid(path)
    if pid is None:
        path.unlink(missing_ok=True)
        return "not running"
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + grace
    while time.time() < deadline and pid_alive(pid):
        time.sleep(0.1)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    settings.serve_state_path.unlink(missing_ok=True)
    return f"stopped (pid {pid})"


def _read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def _wait_healthy(url: str, timeout: float, log: Path, process: subprocess.Popen) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            raise MiltonError(f"server exited during start ({' '.join(tail) or 'no output'}); see {log}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise MiltonError(f"server did not answer {url}/health within {timeout:.0f} s; see {log}")
