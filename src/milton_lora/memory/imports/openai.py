"""OpenAI chat JSONL (`{"messages": [...]}` per line, as fine-tuning files and API logs hold them).

`developer` messages count as system; `tool`/`function` messages and text-less `tool_calls` are stripped and
counted; text parts of multimodal content are kept. A line without an `id` is identified by its content,
so importing the file again adds nothing.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from milton_lora.memory.imports.common import Malformed, ParseCounts, Piece, joined, parse_timestamp
from milton_lora.memory.models import Conversation, Message

_STRIPPED_ROLES = {"tool", "function"}


def parse(raw: dict[str, Any], now: datetime, counts: ParseCounts) -> Conversation:
    if not isinstance(raw.get("messages"), list):
        raise Malformed("expected an object with a 'messages' list")
    created = parse_timestamp(raw.get("created_at", raw.get("timestamp")), now)
    pieces = []
    for position, item in enumerate(raw["messages"], start=1):
        if not isinstance(item, dict) or "role" not in item:
            raise Malformed(f"message {position} needs a 'role'")
        role = "system" if item["role"] == "developer" else item["role"]
        if role in _STRIPPED_ROLES:
            counts.tool_turns_stripped += 1
            continue
        if role not in ("system", "user", "assistant"):
            raise Malformed(f"message {position} has unknown role '{str(role)[:20]}'")
        text = _text(item.get("content"), position)
        if not text.strip() and item.get("tool_calls"):
            counts.tool_turns_stripped += 1
        stamp = parse_timestamp(item.get("created_at", item.get("timestamp")), created)
        pieces.append(Piece(Message(role, text, stamp)))
    source_id = raw.get("id") or _content_hash(raw["messages"])
    title = raw.get("title") if isinstance(raw.get("title"), str) else ""
    return Conversation("openai", str(source_id), title, created, joined(pieces, counts))


def _text(content: Any, position: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        return "\n".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    raise Malformed(f"message {position} has content of type {type(content).__name__}")


def _content_hash(messages: list[Any]) -> str:
    canonical = json.dumps(messages, sort_keys=True, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]
