"""The OpenAI-compatible HTTP API of the embedded server (FastAPI), with vLLM's LoRA admin endpoints.

Errors are OpenAI-shaped JSON (`{"error": {"message", "type", "param", "code"}}`) with 4xx statuses for
client mistakes; an unexpected failure is a 500 with a one-line message, never a traceback.
Decoding is greedy (temperature/top_p are accepted and ignored) and stops at end-of-turn; `usage` counts
the prompt's tokens as the model saw them (chat template included) and the tokens it generated.

No client can hold the one model: bodies are capped before parsing (413), prompt plus `max_tokens` must
fit the context (400 `context_length_exceeded`), each request has a deadline (a reply cut there ends
"length"), the requests held at once are bounded (429 with Retry-After), and a client that goes away
cancels its generation. What the server cannot honour (n>1, tools) is refused, not ignored.

`POST /v1/feedback` takes a thumbs up / down (and an optional edited reply) on a reply the server produced,
named by its completion id; it is stored only when capture is on (serve.yaml `capture`), on the captured
reply: 409 `capture_disabled` when capture is off, 404 when the id names no captured reply.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import iterate_in_threadpool, run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from milton_lora.config import ServeConfig
from milton_lora.serve.engine import BUSY_RETRY_AFTER_S, AdapterError, Engine, Generation
from milton_lora.serve.protocol import (
    ALIAS,
    ChatRequest,
    FeedbackRequest,
    Guard,
    LoadAdapter,
    PointAlias,
    UnloadAdapter,
    adapter_path_allowed,
    openai_error,
)

# (request messages, reply, completion id)
Capture = Callable[[list[dict[str, str]], str, str], None]
# (completion id, rating, edited reply) -> whether the id named a captured reply
FeedbackSink = Callable[[str, str, str | None], bool]
AdapterFinder = Callable[[str], Path | None]
# How often a non-streaming request checks that its client is still there.
DISCONNECT_POLL_S = 0.5


def create_app(engine: Engine, config: ServeConfig, adapters_root: Path, api_key: str | None = None,
               admin_key: str | None = None, capture: Capture | None = None,
               find_adapter: AdapterFinder | None = None, feedback: FeedbackSink | None = None) -> Any:  # fmt: skip
    """The embedded server's ASGI app: the API behind the `Guard` (keys, body limit); `adapters_root` is the
    only folder `/v1/load_lora_adapter` loads from; `feedback` stores `/v1/feedback` (None: capture is off)."""
    app = FastAPI(title="Milton LoRA", docs_url=None, redoc_url=None)
    slots = _Slots(config.max_queued_requests)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"] if p != "body") or None
        return openai_error(400, f"{param or 'body'}: {first['msg'].removeprefix('Value error, ')}", param=param)

    @app.exception_handler(AdapterError)
    async def adapter_error(request: Request, exc: AdapterError) -> JSONResponse:
        kind = {404: "NotFoundError", 429: "rate_limit_error", 503: "server_error"}.get(exc.status, "BadRequestError")
        code = "model_not_found" if exc.status == 404 else exc.code
        return openai_error(exc.status, str(exc), kind, code, exc.param, exc.retry_after)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return openai_error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return openai_error(500, f"internal error: {type(exc).__name__}: {exc}".splitlines()[0], "server_error")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "requests": slots.used, "max_queued_requests": slots.limit}

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
        try:
            path = adapter_path_allowed(body.lora_path, adapters_root)
        except ValueError as exc:
            raise AdapterError(f"Loading lora {body.lora_name} failed: {exc}", 400, param="lora_path") from None
        await run_in_threadpool(engine.load, body.lora_name, path)
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
    async def chat(body: ChatRequest, request: Request) -> Any:
        slots.take()
        try:
            deadline = time.monotonic() + config.request_timeout_s
            await run_in_threadpool(_ensure_loaded, engine, body.model, find_adapter)
            messages = body.conversation()
            keep = capture if body.store else None  # `"store": false`: the client asked not to be remembered
            generation = await run_in_threadpool(engine.begin, body.model, messages, body.budget(), deadline,
                                                 body.stream)  # fmt: skip
        except BaseException:
            slots.free()
            raise
        reply_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if body.stream:
            events = _sse(reply_id, created, body, generation, lambda text: _capture(keep, messages, text, reply_id))
            return _GenerationResponse(events, generation, slots.free)
        try:
            reply = await _finished(generation, request)
        finally:
            slots.free()
        await run_in_threadpool(_capture, keep, messages, reply.text, reply_id)
        message = {"role": "assistant", "content": reply.text}
        return {
            "id": reply_id, "object": "chat.completion", "created": created, "model": body.model,
            "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason}],
            "usage": _usage(reply.prompt_tokens, reply.completion_tokens),
        }  # fmt: skip

    @app.post("/v1/feedback")
    async def give_feedback(body: FeedbackRequest) -> Any:
        if feedback is None:
            return openai_error(409, "Feedback is kept only with the served chats: this server does not capture "
                                     "them (set capture: true in serve.yaml).", code="capture_disabled")  # fmt: skip
        if not await run_in_threadpool(feedback, body.response_id, body.rating, body.edited_content):
            return openai_error(404, f"No captured reply has id '{body.response_id}' (it was sent with "
                                     "store: false, before capture was on, or forgotten).", "NotFoundError",
                                "response_not_found", "response_id")  # fmt: skip
        return {"object": "feedback", "response_id": body.response_id, "rating": body.rating,
                "edited": body.edited_content is not None}  # fmt: skip

    return Guard(app, api_key, admin_key, config.admin_endpoints, config.max_request_bytes)


class _Slots:
    """Requests waiting for the model or generating; one more than `limit` is answered 429 at once.

    Used from the event loop only, so a plain counter is enough."""

    def __init__(self, limit: int):
        self.limit, self.used = limit, 0

    def take(self) -> None:
        if self.used >= self.limit:
            raise AdapterError(f"The server is busy: {self.used} requests queued (max_queued_requests in "
                               "serve.yaml). Retry later.", 429, code="rate_limit_exceeded",
                               retry_after=BUSY_RETRY_AFTER_S)  # fmt: skip
        self.used += 1

    def free(self) -> None:
        self.used -= 1


class _GenerationResponse(StreamingResponse):
    """A stream whose generation is cancelled and whose slot is freed however the response ends: finished,
    failed, or its client gone (even before the first byte, when the event generator never starts)."""

    def __init__(self, events: Any, generation: Generation, on_close: Callable[[], None]):
        super().__init__(events, media_type="text/event-stream")
        self.generation, self.on_close = generation, on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.generation.cancel()
            self.on_close()


async def _finished(generation: Generation, request: Request) -> Any:
    """The whole reply; a client that disconnects meanwhile cancels the generation (freeing the model)."""
    waiter = asyncio.ensure_future(run_in_threadpool(generation.result))
    while not waiter.done():
        await asyncio.wait({waiter}, timeout=DISCONNECT_POLL_S)
        if not waiter.done() and await request.is_disconnected():
            generation.cancel()
    return waiter.result()


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


def _capture(capture: Capture | None, messages: list[dict[str, str]], reply: str, reply_id: str) -> None:
    if capture is not None:
        capture(messages, reply, reply_id)


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}  # fmt: skip


async def _sse(reply_id: str, created: int, body: ChatRequest, generation: Generation,
               capture: Callable[[str], None]) -> Any:  # fmt: skip
    """OpenAI's chunks: the role, the text pieces, the finish reason ("length" when cut), then with
    `stream_options.include_usage` a last chunk with no choices and the usage, and `[DONE]`."""
    usage_field = {"usage": None} if body.include_usage() else {}

    def event(choices: list[dict[str, Any]], **extra: Any) -> str:
        chunk = {"id": reply_id, "object": "chat.completion.chunk", "created": created, "model": body.model,
                 "choices": choices, **usage_field, **extra}  # fmt: skip
        return f"data: {json.dumps(chunk)}\n\n"

    def delta(content: dict[str, str], finish: str | None = None) -> str:
        return event([{"index": 0, "delta": content, "finish_reason": finish}])

    yield delta({"role": "assistant", "content": ""})
    async for piece in iterate_in_threadpool(generation.pieces()):
        yield delta({"content": piece})
    reply = await run_in_threadpool(generation.result)
    yield delta({}, reply.finish_reason)
    if body.include_usage():
        yield event([], usage=_usage(reply.prompt_tokens, reply.completion_tokens))
    yield "data: [DONE]\n\n"
    await run_in_threadpool(capture, reply.text)
