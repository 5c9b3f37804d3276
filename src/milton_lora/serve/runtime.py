"""Running a server: in the foreground (embedded, or vLLM behind its proxy), or started and stopped in the
background (what `scripts/start_all.sh` / `stop_all.sh` run), plus the opt-in capture of served
conversations into the memory store.

Background servers keep a pid file (`runs/server/server.pid`) and a log (`logs/server.log`); start
waits until `/health` answers and is idempotent, stop is too.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount

from milton_lora.config import ServeConfig
from milton_lora.errors import MiltonError
from milton_lora.registry import Entry, Registry
from milton_lora.serve.state import ServerState, pid_alive, versioned_name, wait_healthy
from milton_lora.serve.vllm import VLLM_START_TIMEOUT_S, create_proxy_app, start_vllm, vllm_command
from milton_lora.settings import Settings, env_api_key


def connect_url(config: ServeConfig) -> str:
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    return f"http://{host}:{config.port}"


def run_server(
    settings: Settings, config: ServeConfig, registry: Registry, mounts: dict[str, Any] | None = None
) -> None:
    """Serve in the foreground until interrupted; writes the state file while running. `mounts`: more ASGI
    apps served under their path, ahead of the API (the dashboard under /ui); each checks the API key itself."""
    import uvicorn

    api_key = env_api_key()
    check_exposure(settings, config, api_key)
    running = ServerState.read(settings.serve_state_path)
    if running is not None:
        raise MiltonError(f"a server already runs at {running.url} (pid {running.pid}); stop it first")
    admin_key = secrets.token_urlsafe(32)  # for the hot swap: promotion reads it from the state file
    production = registry.load().production()
    base = base_model_for(config, settings, production)
    served = versioned_name(production.run_id) if production else None
    vllm = None
    if config.backend == "embedded":
        app = _embedded_app(settings, config, registry, base, production, served, api_key, admin_key)
    else:
        app, vllm = _vllm_app(settings, config, registry, base, production, served, api_key, admin_key)
    if mounts:
        app = Starlette(routes=[*(Mount(path, app=mounted) for path, mounted in mounts.items()), Mount("", app=app)])
    state = ServerState(os.getpid(), connect_url(config), config.backend, production.run_id if production else None,
                        served, datetime.now(timezone.utc).isoformat(timespec="seconds"), admin_key)  # fmt: skip
    state.write(settings.serve_state_path)
    try:
        uvicorn.run(app, host=config.host, port=config.port, log_level="warning")
    finally:
        settings.serve_state_path.unlink(missing_ok=True)
        if vllm is not None:
            vllm.terminate()


def check_exposure(settings: Settings, config: ServeConfig, api_key: str | None) -> None:
    """Refuse to serve beyond this machine, or to open the admin endpoints, without an API key."""
    how = ("set one first: export MILTON_SERVE_API_KEY=\"$(python -c 'import secrets; "
           "print(secrets.token_urlsafe(32))')\" and give clients the same key")  # fmt: skip
    if api_key:
        return
    if not is_loopback(config.host):
        raise MiltonError(f"{settings.serve_config_path}: host {config.host} exposes the server to your network "
                          f"without an API key; {how}, or keep host: 127.0.0.1")  # fmt: skip
    if config.admin_endpoints:
        raise MiltonError(f"{settings.serve_config_path}: admin_endpoints: true needs an API key; {how}")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def _embedded_app(settings: Settings, config: ServeConfig, registry: Registry, base: Path, production: Entry | None,
                  served: str | None, api_key: str | None, admin_key: str):  # type: ignore[no-untyped-def]  # fmt: skip
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
    feedback = feedback_to_memory(settings.memory_db) if config.capture else None
    return create_app(engine, config, registry.adapters_dir, api_key, admin_key, capture, find_adapter, feedback)


def _vllm_app(settings: Settings, config: ServeConfig, registry: Registry, base: Path,
              production: Entry | None, served: str | None, api_key: str | None, admin_key: str):  # type: ignore[no-untyped-def]  # fmt: skip
    """vLLM on the next port, our proxy (which adds the `milton` alias) on the configured one."""
    if production is None or served is None:
        raise MiltonError("backend vllm: promote an adapter to production first")
    upstream = f"http://127.0.0.1:{config.port + 1}"
    command = vllm_command(config, base, served, registry.path_of(production.adapter_path), config.port + 1)
    process = start_vllm(command, settings.vllm_log)
    wait_healthy(upstream, VLLM_START_TIMEOUT_S, settings.vllm_log, process)
    return create_proxy_app(upstream, served, api_key, admin_key, config.max_request_bytes), process


def base_model_for(config: ServeConfig, settings: Settings, production: Entry | None) -> Path:
    if config.base_model_path:
        return settings.resolve(config.base_model_path)
    if production and production.base_model_path:
        return Path(production.base_model_path)
    raise MiltonError(
        f"{settings.serve_config_path}: no base_model_path and no production adapter to take it from; "
        "set base_model_path or promote an adapter first"
    )


def capture_to_memory(db: Path) -> Any:
    """A capture hook that stores each served conversation. A later request that continues it (its turns
    start with the stored ones) replaces it with the grown version; the same request again (a retry, or an
    older request the stored one outgrew) changes nothing; a different conversation that only shares an
    opening is stored apart. A conversation named by its opening turns is found again through every prefix
    of the request, so one that `memory forget` removed is not captured back when the client resends it. The
    reply is remembered by the completion's id (`reply_id`), for `POST /v1/feedback`.

    The same request sent again within `REGENERATE_WINDOW` of the reply it last got, answered differently, is
    a regeneration (what a chat app's "regenerate" button sends): the new reply takes the old one's place and
    the old one is kept as its abandoned alternative, as a ChatGPT export's regenerations are, so it becomes
    a preference pair and never SFT data. Later, the same question is a new conversation, stored apart."""
    from milton_lora.memory import MemoryStore, Message

    def capture(messages: list[dict[str, str]], reply: str, reply_id: str | None = None) -> None:
        now = datetime.now(timezone.utc)
        turns = [Message(m["role"], m["content"], now) for m in messages] + [Message("assistant", reply, now)]
        prefixes = [served_id(turns[:end]) for end in range(1, len(turns) + 1)]
        with MemoryStore(db) as store, store.transaction():
            if any(store.is_forgotten(store.identity_hash(f"{SERVED}:{p}")) for p in prefixes):
                return
            conversation_id = _keep_served(store, turns, prefixes[-1], now)
            if reply_id is not None and conversation_id is not None:
                store.remember_reply(reply_id, conversation_id, len(turns) - 1)

    return capture


def _keep_served(store: Any, turns: list[Any], new_key: str, now: datetime) -> int | None:
    """Store the served `turns` where they belong (see `capture_to_memory`); the number of the conversation
    that holds them. Every stored conversation it can belong with shares the request's first two turns (a
    stored one ends with a reply, so it holds at least two), or is a first exchange answered anew: only
    those are read, not every chat that opens with the same system prompt."""
    from milton_lora.memory import Conversation
    from milton_lora.memory.models import Alternative

    title = next((t.content for t in turns if t.role == "user"), turns[0].content)[:80]
    same = [(t.role, t.content) for t in turns]
    found = store.opening_with(SERVED, turns[:2])
    if len(turns) == 2:  # a regenerated first reply shares only the first turn
        found += store.opening_with(SERVED, turns[:1], length=2)
    shown = {id(c): [(m.role, m.content) for m in c.messages] for c in found}
    held = next((c for c in found if shown[id(c)][: len(same)] == same), None)
    if held is not None:
        return held.id
    grown = max((c for c in found if same[: len(shown[id(c)])] == shown[id(c)]), key=lambda c: len(c.messages),
                default=None)  # fmt: skip
    again = next((c for c in found if len(c.messages) == len(turns) and shown[id(c)][:-1] == same[:-1]
                  and c.messages[-1].created_at >= now - REGENERATE_WINDOW), None)  # fmt: skip
    before = grown or again
    if before is not None:
        for kept, turn in zip(before.messages, turns, strict=False):
            turn.alternatives = list(kept.alternatives)
    if again is not None and grown is None:
        old = again.messages[-1]
        turns[-1].alternatives.append(Alternative(old.content, old.created_at))
    key = before.source_id if before is not None else new_key
    return store.replace_conversation(Conversation(SERVED, key, title, now, turns))


def feedback_to_memory(db: Path) -> Any:
    """A feedback hook: stores a thumbs / edit on the captured reply a completion id names; False when the id
    names no captured reply (never captured, `store: false`, or forgotten)."""
    from milton_lora.memory import MemoryStore

    def feedback(reply_id: str, rating: str, edited: str | None) -> bool:
        with MemoryStore(db) as store:
            found = store.reply_of(reply_id)
            if found is None:
                return False
            store.add_feedback(*found, rating, edited, "served", datetime.now(timezone.utc))
        return True

    return feedback


SERVED = "milton-serve"
# How soon the same request must come again to count as regenerating its reply (a chat app's button is
# pressed within minutes; the same question days later is a new conversation).
REGENERATE_WINDOW = timedelta(minutes=30)


def served_id(turns: list[Any]) -> str:
    """A served conversation's id: a hash of the turns it had when first captured."""
    return hashlib.sha256(json.dumps([(t.role, t.content) for t in turns]).encode()).hexdigest()[:24]


# --- background --------------------------------------------------------------------------------


def start_background(settings: Settings, config: ServeConfig, timeout: float) -> str:
    running = ServerState.read(settings.serve_state_path)
    if running is not None:
        return f"already running at {running.url} (pid {running.pid})"
    log = settings.server_log
    log.parent.mkdir(parents=True, exist_ok=True)
    settings.server_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "milton_lora", "--home", str(settings.home), "serve"],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    settings.server_pid_path.write_text(f"{process.pid}\n")
    wait_healthy(connect_url(config), timeout, log, process)
    return f"started at {connect_url(config)} (pid {process.pid}); log: {log}"


def stop_background(settings: Settings, grace: float = 30.0) -> str:
    path = settings.server_pid_path
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
