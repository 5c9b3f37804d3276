"""The OpenAI-compatible HTTP API of the embedded server (FastAPI), with vLLM's LoRA admin endpoints.

Errors are OpenAI-shaped JSON (`{"error": {"message", "type", "param", "code"}}`) with 4xx statuses for
client mistakes; an unexpected failure is a 500 with a one-line message, never a traceback.
Decoding is greedy (temperature/top_p are accepted and ignored) and stops at end-of-turn; `usage` counts
the prompt's tokens as the model saw them (chat template included) and the tokens it generated.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import iterate_in_threadpool, run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from milton_lora.serve.engine import AdapterError, Engine
from milton_lora.serve.protocol import (
    ALIAS,
    ChatRequest,
    LoadAdapter,
    PointAlias,
    UnloadAdapter,
    openai_error,
    require_api_key,
)

Capture = Callable[[list[dict[str, str]], str], None]
AdapterFinder = Callable[[str], Path | None]


def create_app(engine: Engine, api_key: str | None = None, capture: Capture | None = None,
               find_adapter: AdapterFinder | None = None) -> FastAPI:  # fmt: skip
    app = FastAPI(title="Milton LoRA", docs_url=None, redoc_url=None)

    require_api_key(app, api_key)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"] if p != "body") or None
        return openai_error(400, f"{param or 'body'}: {first['msg']}", param=param)

    @app.exception_handler(AdapterError)
    async def adapter_error(request: Request, exc: AdapterError) -> JSONResponse:
        code = "model_not_found" if exc.status == 404 else None
        return openai_error(exc.status, str(exc), "NotFoundError" if exc.status == 404 else "BadRequestError", code)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return openai_error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return openai_error(500, f"internal error: {type(exc).__name__}: {exc}".splitlines()[0], "server_error")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        created = int(time.time())

        def card(model_id: str, root: str, parent: str | None) -> dict[str, Any]:
            return {"id": model_id, "object": "model", "created": created, "owned_by": "milton-lora", "root": root,
                    "parent": parent}  # fmt: skip

        data = [card(engine.base_name, str(engine.base_path), None)]
        if engine.alias_target:
            data.append(card(ALIAS, engine.alias_target, engine.base_name))
        data += [card(name, str(engine.adapters[name].path), engine.base_name) for name in engine.names()]
        return {"object": "list", "data": data}

    @app.post("/v1/load_lora_adapter")
    async def load_adapter(body: LoadAdapter) -> PlainTextResponse:
        await run_in_threadpool(engine.load, body.lora_name, Path(body.lora_path))
        return PlainTextResponse(f"Success: LoRA adapter '{body.lora_name}' added successfully.")

    @app.post("/v1/unload_lora_adapter")
    async def unload_adapter(body: UnloadAdapter) -> PlainTextResponse:
        await run_in_threadpool(engine.unload, body.lora_name)
        return PlainTextResponse(f"Success: LoRA adapter '{body.lora_name}' removed successfully.")

    @app.post("/admin/alias")
    async def point_alias(body: PointAlias) -> dict[str, str | None]:
        previous = engine.point_alias(body.lora_name)
        return {"alias": ALIAS, "target": body.lora_name, "previous": previous}

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest) -> Any:
        await run_in_threadpool(_ensure_loaded, engine, body.model, find_adapter)
        messages = body.conversation()
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if body.stream:
            pieces = _stream_pinned(engine, body.model, messages, body.budget(), capture)
            first = await iterate_in_threadpool(pieces).__anext__()  # resolves the model (404s) before streaming
            return StreamingResponse(
                _sse(completion_id, created, body.model, first, iterate_in_threadpool(pieces)),
                media_type="text/event-stream",
            )
        with engine.pinned(body.model) as target:
            reply = await run_in_threadpool(engine.complete, target, messages, body.budget())
        if capture:
            await run_in_threadpool(capture, messages, reply.text)
        message = {"role": "assistant", "content": reply.text}
        return {
            "id": completion_id, "object": "chat.completion", "created": created, "model": body.model,
            "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason}],
            "usage": {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
                      "total_tokens": reply.prompt_tokens + reply.completion_tokens},
        }  # fmt: skip

    return app


def _ensure_loaded(engine: Engine, model: str, find_adapter: AdapterFinder | None) -> None:
    """A registered run id that is not loaded yet is loaded on first use."""
    if model in (ALIAS, engine.base_name) or model in engine.names() or find_adapter is None:
        return
    path = find_adapter(model)
    if path is not None:
        try:
            engine.load(model, path)
        except AdapterError as exc:
            if exc.status != 400:  # already loaded by a concurrent request is fine
                raise


def _stream_pinned(engine: Engine, model: str, messages: list[dict[str, str]], budget: int,
                   capture: Capture | None) -> Iterator[str | None]:  # fmt: skip
    """Yields None once the model is resolved, then the text pieces; the adapter stays pinned throughout."""
    with engine.pinned(model) as target:
        yield None
        parts = []
        for piece in engine.stream(target, messages, budget):
            parts.append(piece)
            yield piece
    if capture:
        capture(messages, "".join(parts).strip())


async def _sse(completion_id: str, created: int, model: str, first: str | None, rest: Any) -> Any:
    def event(delta: dict[str, str], finish: str | None = None) -> str:
        chunk = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
        return f"data: {json.dumps(chunk)}\n\n"

    yield event({"role": "assistant", "content": ""})
    if first:
        yield event({"content": first})
    async for piece in rest:
        yield event({"content": piece})
    yield event({}, "stop")
    yield "data: [DONE]\n\n"
