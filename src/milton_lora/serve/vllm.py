"""Launching vLLM: the `vllm serve` command line and environment, starting it, and the proxy that gives
it the stable `milton` alias it lacks. What vLLM accepts of an adapter is `milton_lora.vllm_rules`'s.

FastAPI is imported where it is used. The proxy's handlers are annotated with real classes (no postponed
annotations in this module) because FastAPI resolves them from the function, not the module.
"""

import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from milton_lora.errors import MiltonError
from milton_lora.settings import ADAPTER_CONFIG
from milton_lora.vllm_rules import vllm_rank

if TYPE_CHECKING:
    from milton_lora.config import ServeConfig

# Lets the running server load and unload adapters (the hot swap).
VLLM_ENV = {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
VLLM_START_TIMEOUT_S = 900


def vllm_command(config: "ServeConfig", base: Path, adapter_name: str, adapter_dir: Path, port: int) -> list[str]:
    """`vllm serve` with runtime LoRA loading and the production adapter preloaded under its versioned name."""
    rank = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())["r"]
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


def start_vllm(command: list[str], log: Path) -> subprocess.Popen:
    """Start `vllm serve` with its output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        return subprocess.Popen(
            command, env={**os.environ, **VLLM_ENV}, stdout=log.open("ab"), stderr=subprocess.STDOUT
        )
    except FileNotFoundError:
        raise MiltonError("backend vllm: the `vllm` command is not installed (pip install vllm)") from None


def create_proxy_app(
    upstream: str,
    alias_target: "str | None",
    api_key: "str | None" = None,
    admin_key: "str | None" = None,
    max_body_bytes: int = 1_048_576,
) -> Any:
    """The public face of a vLLM backend: forwards to vLLM and gives it the stable `milton` alias it lacks.

    Requests for `milton` are rewritten to the current versioned adapter name; `/admin/alias` moves
    it; everything else (models, LoRA load/unload, streaming) passes through unchanged.
    """
    import httpx
    from fastapi import FastAPI, Request
    from fastapi.responses import StreamingResponse

    from milton_lora.serve.protocol import ALIAS, Guard, PointAlias, openai_error

    app = FastAPI(title="Milton LoRA (vLLM proxy)", docs_url=None, redoc_url=None)
    state = {"target": alias_target}
    client = httpx.AsyncClient(base_url=upstream, timeout=httpx.Timeout(600.0, connect=10.0))

    @app.post("/admin/alias")
    async def point_alias(body: PointAlias) -> dict:
        previous, state["target"] = state["target"], body.lora_name
        return {"alias": ALIAS, "target": body.lora_name, "previous": previous}

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def forward(path: str, request: Request) -> Any:
        body = await request.body()
        if path == "v1/chat/completions" and body:
            payload = json.loads(body)
            if payload.get("model") == ALIAS:
                if state["target"] is None:
                    return openai_error(404, "The model `milton` does not exist.", "NotFoundError", "model_not_found")
                payload["model"] = state["target"]
                body = json.dumps(payload).encode()
        headers = {"content-type": request.headers.get("content-type", "")}
        upstream_request = client.build_request(request.method, "/" + path, content=body, headers=headers)
        response = await client.send(upstream_request, stream=True)
        return StreamingResponse(response.aiter_raw(), status_code=response.status_code,
                                 media_type=response.headers.get("content-type"))  # fmt: skip

    return Guard(app, api_key, admin_key, False, max_body_bytes)
