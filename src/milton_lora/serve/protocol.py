"""The wire protocol the embedded server and the vLLM proxy share: OpenAI chat requests, vLLM's LoRA
admin bodies, OpenAI-shaped errors, the optional API key, and the stable `milton` alias.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

ALIAS = "milton"
DEFAULT_MAX_TOKENS = 512


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict[str, Any]]

    @field_validator("content")
    @classmethod
    def _encodable(cls, content: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
        # JSON's \ud800 escapes decode to lone surrogates, which no tokenizer (nor UTF-8) can take.
        texts = [content] if isinstance(content, str) else [str(part.get("text", "")) for part in content]
        for text in texts:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("contains a lone surrogate (\\ud800-\\udfff): not valid Unicode text") from None
        return content

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.get("text", "") for part in self.content if part.get("type") == "text")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatRequest(BaseModel):
    """A chat completion request; what this server cannot honour (several choices, tool calls) is refused
    rather than silently ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(None, ge=1, le=8192)
    n: int = 1
    tools: Any = None
    tool_choice: Any = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, n: int) -> int:
        if n != 1:
            raise ValueError("only n=1 is supported (greedy decoding gives one answer)")
        return n

    @field_validator("tools", "tool_choice")
    @classmethod
    def _no_tools(cls, value: Any) -> Any:
        if value not in (None, [], "none"):
            raise ValueError("tool calls are not supported by this server")
        return value

    store: bool = True  # OpenAI's field: false asks not to be captured into memory (also the hot swap's ping)

    @field_validator("messages")
    @classmethod
    def _ends_with_user(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if messages[-1].role == "assistant":
            raise ValueError("the last message must not be from the assistant")
        return messages

    def conversation(self) -> list[dict[str, str]]:
        return [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in self.messages]

    def budget(self) -> int | None:
        """The reply's token budget as asked; None lets the server fit it to the context."""
        return self.max_completion_tokens or self.max_tokens

    def include_usage(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)


class FeedbackRequest(BaseModel):
    """`POST /v1/feedback`: the person's judgement of a reply this server produced, named by the completion's
    `id` (`response_id`); `edited_content` is the reply as they wanted it."""

    model_config = ConfigDict(extra="forbid")
    response_id: str = Field(min_length=1, max_length=200)
    rating: Literal["up", "down"]
    edited_content: str | None = None

    @field_validator("edited_content")
    @classmethod
    def _some_text(cls, edited: str | None) -> str | None:
        if edited is not None and not edited.strip():
            raise ValueError("is empty; leave it out to rate the reply as it was")
        return edited


class LoadAdapter(BaseModel):
    lora_name: str = Field(min_length=1)
    lora_path: str = Field(min_length=1)


class UnloadAdapter(BaseModel):
    lora_name: str = Field(min_length=1)


class PointAlias(BaseModel):
    lora_name: str = Field(min_length=1)


# Error messages are cut here: they never echo a client's input at length.
MAX_ERROR_CHARS = 1000


def openai_error(status: int, message: str, kind: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, retry_after: int | None = None) -> JSONResponse:  # fmt: skip
    """An OpenAI-shaped error; the message is made valid UTF-8 (a lone surrogate would fail the response
    itself and break the connection) and bounded."""
    text = message.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > MAX_ERROR_CHARS:
        text = text[:MAX_ERROR_CHARS] + "…"
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    error = {"message": text, "type": kind, "param": param, "code": code}
    return JSONResponse({"error": error}, status, headers=headers)


# The vLLM-style endpoints that change what the server serves.
ADMIN_PATHS = ("/admin/", "/v1/load_lora_adapter", "/v1/unload_lora_adapter")


class Guard:
    """ASGI middleware in front of every route: the request body limit (413, before any parsing), the API
    key on /v1, and a key on the admin endpoints always: the server's own admin key (the hot swap reads it
    from the state file; it opens every route) or, when `admin_with_api_key` (serve.yaml
    `admin_endpoints`), the API key. Bodies are read whole here (bounded by then) and replayed, so a
    disconnect still reaches the route."""

    def __init__(self, app: Any, api_key: str | None, admin_key: str | None, admin_with_api_key: bool,
                 max_body_bytes: int):  # fmt: skip
        self.app, self.api_key, self.admin_key = app, api_key, admin_key
        self.admin_with_api_key, self.max_body_bytes = admin_with_api_key, max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope["path"], headers.get("authorization", "")) or self._too_large(
            headers.get("content-length")
        )
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                await self._too_large(str(len(body)))(scope, receive, send)  # type: ignore[misc]
                return
            if not message.get("more_body"):
                break
        await self.app(scope, _replay(bytes(body), receive), send)

    def _refusal(self, path: str, authorization: str) -> JSONResponse | None:
        given = bearer_key(authorization)
        if path.startswith(ADMIN_PATHS):
            keys = [self.admin_key] + ([self.api_key] if self.admin_with_api_key else [])
            if not key_matches(given, *keys):
                hint = "the API key" if self.admin_with_api_key else "the server's admin key (admin_endpoints is off)"
                return openai_error(401, f"{path} needs {hint}.", "invalid_request_error", "invalid_api_key")
        elif self.api_key and path.startswith("/v1") and not key_matches(given, self.api_key, self.admin_key):
            return openai_error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        return None

    def _too_large(self, length: str | None) -> JSONResponse | None:
        if length is None or not length.isdigit() or int(length) <= self.max_body_bytes:
            return None
        return openai_error(413, f"Request body of {int(length)} bytes is over this server's limit of "
                                 f"{self.max_body_bytes} bytes (max_request_bytes in serve.yaml).",
                            code="request_too_large")  # fmt: skip


def bearer_key(authorization: str) -> str:
    """The key an `Authorization: Bearer <key>` header presents ("" when none)."""
    return authorization.removeprefix("Bearer ").strip()


def key_matches(given: str, *keys: str | None) -> bool:
    """Whether `given` is one of `keys` (compared in constant time; a key that is not set matches nothing). The
    server's guard and the dashboard's sign-in both check keys with it."""
    return any(key and secrets.compare_digest(given.encode(), key.encode()) for key in keys)


def _replay(body: bytes, receive: Any) -> Any:
    """A `receive` that hands the buffered body over once, then passes on what the client sends next."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def adapter_path_allowed(lora_path: str, root: Path) -> Path:
    """`lora_path` resolved, when it lies inside the adapters folder `root`; else a 400-worthy ValueError."""
    resolved = Path(lora_path).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ValueError(f"lora_path must be inside the adapters folder {root}")
    return resolved
