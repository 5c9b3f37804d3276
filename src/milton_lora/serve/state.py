"""The background server's state: its state file (`runs/server/state.json`: pid, url, backend, the
production adapter and the versioned name it is served under), liveness, waiting for health, and the
hot swap that promotion and rollback perform on a running server.

Hot swap: load the new production adapter under a new versioned name, check it answers, point
`milton` at it, unload the old version. It works from what the server reports (`/v1/models`), not from
what the last swap meant to do, so it also repairs a swap that was killed halfway: a server already
answering with production keeps that version, and every other versioned adapter left loaded is
unloaded. No state file or a dead pid means no server: nothing to do, nothing fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from milton_lora.errors import MiltonError
from milton_lora.fileio import atomic_write_json, process_exists
from milton_lora.registry import Registry
from milton_lora.settings import Settings


@dataclass
class ServerState:
    pid: int
    url: str
    backend: str
    production: str | None
    served_name: str | None
    started_at: str
    admin_key: str | None = None  # the key the admin endpoints take (this file is the owner's only: 0600)

    @classmethod
    def read(cls, path: Path) -> ServerState | None:
        """The running server's state, or None when no server runs (missing file or dead pid)."""
        try:
            state = cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None
        return state if pid_alive(state.pid) else None

    def write(self, path: Path) -> None:
        atomic_write_json(path, self.__dict__)


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs (a child that exited is reaped first, so it does not linger as a zombie)."""
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished:
            return False
    except ChildProcessError:
        pass  # not our child: ask the kernel
    return process_exists(pid)


def versioned_name(run_id: str) -> str:
    """A name used once: `<run_id>@<milliseconds>`; vLLM has served stale blocks for names reloaded in place."""
    return f"{run_id}@{int(time.time() * 1000)}"


def hot_swap(settings: Settings, registry: Registry, api_key: str | None, timeout: float = 120.0) -> str:
    """Point a running server's `milton` at the registry's production adapter; returns what happened."""
    state = ServerState.read(settings.serve_state_path)
    if state is None:
        return "no server running; the new production adapter will be served at next start"
    production = registry.load().production()
    if production is None:
        return "no production adapter; the running server keeps its current one"
    from milton_lora.serve.protocol import ALIAS  # the web stack only once a server runs

    key = state.admin_key or api_key
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=state.url, headers=headers, timeout=timeout) as client:
        loaded = _loaded(client)
        serving = loaded.get(ALIAS) or state.served_name
        if serving in loaded and serving.split("@")[0] == production.run_id:
            target = serving  # already answering: a repeat, or a swap killed after the alias moved
        else:
            target = versioned_name(production.run_id)
            _call(client, "/v1/load_lora_adapter",
                  {"lora_name": target, "lora_path": str(registry.path_of(production.adapter_path))})  # fmt: skip
            _call(client, "/v1/chat/completions",
                  {"model": target, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1,
                   "store": False})  # fmt: skip
            _call(client, "/admin/alias", {"lora_name": target})
        stale = [name for name in loaded if "@" in name and name != target]
        for name in stale:  # the old version, and any a killed swap loaded but never served
            _call(client, "/v1/unload_lora_adapter", {"lora_name": name})
    state.production, state.served_name = production.run_id, target
    state.write(settings.serve_state_path)
    cleared = f" (unloaded {', '.join(stale)})" if stale else ""
    return f"running server at {state.url} now answers `milton` with {production.run_id}{cleared}"


def _loaded(client: httpx.Client) -> dict[str, str]:
    """The server's models: each id with its root (for `milton`, the versioned name it answers with)."""
    try:
        response = client.get("/v1/models")
        response.raise_for_status()
        return {card["id"]: card.get("root") or "" for card in response.json()["data"]}
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise MiltonError(f"hot swap: server at {client.base_url} did not list its models ({exc})") from None


def _call(client: httpx.Client, path: str, body: dict[str, Any]) -> None:
    try:
        response = client.post(path, json=body)
    except httpx.HTTPError as exc:
        raise MiltonError(f"hot swap: server at {client.base_url} did not answer {path} ({exc})") from None
    if response.status_code >= 400:
        raise MiltonError(f"hot swap: {path} answered {response.status_code}: {response.text[:300]}")


def wait_healthy(url: str, timeout: float, log: Path, process: subprocess.Popen) -> None:
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
