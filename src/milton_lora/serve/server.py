"""Running a server (embedded or vLLM), its state file, conversation capture, and the hot swap client.

A running server writes `runs/server/state.json` (pid, url, backend, current production adapter);
promotion and rollback read it to hot-swap: load the new production adapter under a new versioned
name, check it answers, point `milton` at it, unload the old version. No state file or a dead pid
means no server: nothing to do, nothing fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from milton_lora.config import VLLM_LORA_RANKS, ServeConfig
from milton_lora.errors import MiltonError
from milton_lora.fileio import atomic_write_json
from milton_lora.registry import Entry, Registry
from milton_lora.settings import Settings


@dataclass
class ServerState:
    pid: int
    url: str
    backend: str
    production: str | None
    served_name: str | None
    started_at: str

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
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def versioned_name(run_id: str) -> str:
    """A name used once: `<run_id>@<milliseconds>`; vLLM has served stale blocks for names reloaded in place."""
    return f"{run_id}@{int(time.time() * 1000)}"


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
    """A capture hook that stores each served conversation (grown versions replace shorter ones)."""
    from milton_lora.memory import Conversation, MemoryStore, Message

    def capture(messages: list[dict[str, str]], reply: str) -> None:
        first_user = next((i for i, m in enumerate(messages) if m["role"] == "user"), 0)
        key = hashlib.sha256(json.dumps(messages[: first_user + 1]).encode()).hexdigest()[:24]
        now = datetime.now(timezone.utc)
        turns = [Message(m["role"], m["content"], now) for m in messages] + [Message("assistant", reply, now)]
        with MemoryStore(db) as store, store.transaction():
            known = store.message_count("milton-serve", key)
            if known is None or known < len(turns):
                store.replace_conversation(
                    Conversation("milton-serve", key, messages[first_user]["content"][:80], now, turns)
                )

    return capture


# --- hot swap (client side) ------------------------------------------------------------------------


def hot_swap(settings: Settings, registry: Registry, api_key: str | None, timeout: float = 120.0) -> str:
    """Point a running server's `milton` at the registry's production adapter; returns what happened."""
    state = ServerState.read(settings.serve_state_path)
    if state is None:
        return "no server running; the new production adapter will be served at next start"
    production = registry.load().production()
    if production is None:
        return "no production adapter; the running server keeps its current one"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    new_name = versioned_name(production.run_id)
    with httpx.Client(base_url=state.url, headers=headers, timeout=timeout) as client:
        _call(client, "/v1/load_lora_adapter",
              {"lora_name": new_name, "lora_path": str(registry.path_of(production.adapter_path))})  # fmt: skip
        _call(client, "/v1/chat/completions",
              {"model": new_name, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1})  # fmt: skip
        _call(client, "/admin/alias", {"lora_name": new_name})
        if state.served_name:
            _call(client, "/v1/unload_lora_adapter", {"lora_name": state.served_name})
    state.production, state.served_name = production.run_id, new_name
    state.write(settings.serve_state_path)
    return f"running server at {state.url} now answers `milton` with {production.run_id}"


def _call(client: httpx.Client, path: str, body: dict[str, Any]) -> None:
    try:
        response = client.post(path, json=body)
    except httpx.HTTPError as exc:
        raise MiltonError(f"hot swap: server at {client.base_url} did not answer {path} ({exc})") from None
    if response.status_code >= 400:
        raise MiltonError(f"hot swap: {path} answered {response.status_code}: {response.text[:300]}")


# --- vLLM ------------------------------------------------------------------------------------------


def vllm_rank(adapter_rank: int) -> int:
    """The smallest rank vLLM accepts for --max-lora-rank that fits the adapter."""
    for allowed in VLLM_LORA_RANKS:
        if allowed >= adapter_rank:
            return allowed
    raise MiltonError(f"LoRA rank {adapter_rank} is above vLLM's largest ({VLLM_LORA_RANKS[-1]})")


def vllm_command(config: ServeConfig, base: Path, adapter_name: str, adapter_dir: Path, port: int) -> list[str]:
    """`vllm serve` with runtime LoRA loading and the production adapter preloaded under its versioned name."""
    rank = json.loads((adapter_dir / "adapter_config.json").read_text())["r"]
    module = {"name": adapter_name, "path": str(adapter_dir), "base_model_name": config.base_model_name or base.name}
    return [
        "vllm", "serve", str(base),
        "--served-model-name", config.base_model_name or base.name,
        "--host", config.host, "--port", str(port),
        "--enable-lora",
        "--max-lora-rank", str(vllm_rank(rank)),
        "--lora-modules", json.dumps(module),
        *config.vllm_extra_args,
    ]  # fmt: skip


VLLM_ENV = {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
