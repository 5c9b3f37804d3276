"""claude.ai data exports (`conversations.json`, alone or in the export zip): one conversation per record.

Kept: human and assistant text, and the text of attached files (`attachments[].extracted_content`) as
attachments of the turn, apart from what was typed; the export decides whether they go into training
(`include_attachments`). Files without extracted text (images) have nothing to keep. `tool_use` and
`tool_result` blocks are stripped and counted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from milton_lora.memory.imports.common import Malformed, ParseCounts, Piece, joined, parse_timestamp, text_of
from milton_lora.memory.models import Attachment, Conversation, Message

_ROLES = {"human": "user", "assistant": "assistant"}


def parse(raw: dict[str, Any], now: datetime, counts: ParseCounts) -> Conversation:
    conversation_id = raw.get("uuid")
    if not isinstance(conversation_id, str) or not conversation_id:
        raise Malformed("missing 'uuid'")
    chat = raw.get("chat_messages")
    if not isinstance(chat, list):
        raise Malformed("missing 'chat_messages' list")
    created = parse_timestamp(raw.get("created_at"), now)
    pieces = []
    for position, item in enumerate(chat, start=1):
        if not isinstance(item, dict):
            raise Malformed(f"message {position} is not an object")
        sender = item.get("sender")
        if sender not in _ROLES:
            raise Malformed(f"message {position} has sender {str(sender)[:20]!r}, expected 'human' or 'assistant'")
        attachments = _attachments(item.get("attachments"), position)
        counts.attachments_kept += len(attachments)
        stamp = parse_timestamp(item.get("created_at"), created)
        pieces.append(Piece(Message(_ROLES[sender], _text(item, counts), stamp, attachments)))
    title = raw.get("name") if isinstance(raw.get("name"), str) else ""
    return Conversation("claude", conversation_id, title, created, joined(pieces, counts))


def _text(item: dict[str, Any], counts: ParseCounts) -> str:
    blocks = item.get("content")
    if not isinstance(blocks, list) or not blocks:
        return text_of(item.get("text"), "message text")
    pieces = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            pieces.append(text_of(block.get("text"), "text block"))
        elif block.get("type") in ("tool_use", "tool_result"):
            counts.tool_turns_stripped += 1
    return "\n".join(p for p in pieces if p)


def _attachments(value: Any, position: int) -> list[Attachment]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(f"message {position}: 'attachments' is not a list")
    kept = []
    for item in value:
        if isinstance(item, dict) and (text := text_of(item.get("extracted_content"), "extracted_content").strip()):
            kept.append(Attachment(text_of(item.get("file_name"), "file_name") or "attachment", text))
    return kept
