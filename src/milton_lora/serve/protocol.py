"""The wire protocol the embedded server and the vLLM proxy share: OpenAI chat requests, vLLM's LoRA
admin bodies, OpenAI-shaped errors, the optional API key, and the stable `milton` alias.
"""

from __future__ import annotations

import secrets
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

ALIAS = "milton"
DEFAULT_MAX_TOKENS = 512


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict[str, Any]]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.get("text", "") for part in self.content if part.get("type") == "text")


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(None, ge=1, le=8192)

    @field_validator("messages")
    @classmethod
    def _ends_with_user(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if messages[-1].role == "assistant":
            raise ValueError("the last message must not be from the assistant")
        return messages

    def conversation(self) -> list[dict[str, str]]:
        return [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in self.messages]

    def budget(self) -> int:
        return self.max_completion_tokens or self.max_tokens or DEFAULT_MAX_TOKENS


class LoadAdapter(BaseModel):
    lora_name: str = Field(min_length=1)
    lora_path: str = Field(min_length=1)


class UnloadAdapter(BaseModel):
    lora_name: str = Field(min_length=1)


class PointAlias(BaseModel):
    lora_name: str = Field(min_length=1)


def openai_error(status: int, message: str, kind: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None) -> JSONResponse:  # fmt: skip
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}}, status)


def require_api_key(app: FastAPI, api_key: str | None) -> None:
    """When a key is set, every /v1 and /admin request must carry `Authorization: Bearer <key>`."""

    @app.middleware("http")
    async def check_key(request: Request, call_next: Any) -> Any:
        if api_key and request.url.path.startswith(("/v1", "/admin")):
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not secrets.compare_digest(given.encode(), api_key.encode()):
                return openai_error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        return await call_next(request)
