"""Importers for conversation history from elsewhere: ChatGPT and claude.ai data exports, OpenAI JSONL.

What is kept, by decision (documented in the README):
- Only what the person saw as the conversation: system (if non-empty and not hidden), user and
  assistant text. ChatGPT keeps only the branch ending at `current_node`; regenerated or edited
  branches are dropped.
- Tool turns are dropped: tool results (`tool` role: browsing, code execution output, DALL·E),
  assistant messages addressed to a tool (`recipient` other than `all`, e.g. code-interpreter code),
  hidden reasoning (`thoughts`), OpenAI `tool`/`function` messages and assistant `tool_calls` without
  text, and Claude `tool_use`/`tool_result` blocks. Their count is reported.
- Multimodal parts are flattened to their text; images and attachments are dropped.
- Consecutive turns of the same role (left behind by dropped tool turns) are joined with a blank line.
- A conversation already in the store (same source and source id) is left alone, unless the new
  file holds more messages of it (a later export of a continued chat): then it is replaced.
Every file is imported in one transaction: a malformed file adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from milton_lora.errors import MiltonError
from milton_lora.memory.models import Conversation, Message
from milton_lora.memory.store import MemoryStore

FORMATS = ("auto", "chatgpt", "claude", "openai")


@dataclass
class ParseCounts:
    dropped_tool_turns: int = 0
    dropped_hidden: int = 0
    skipped_empty_conversations: int = 0


@dataclass
class ImportReport:
    path: str
    format: str
    conversations_in_file: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    messages_imported: int = 0
    counts: ParseCounts = field(default_factory=ParseCounts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "conversations_in_file": self.conversations_in_file,
            "imported": self.imported,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "messages_imported": self.messages_imported,
            "dropped_tool_turns": self.counts.dropped_tool_turns,
            "dropped_hidden": self.counts.dropped_hidden,
            "skipped_empty_conversations": self.counts.skipped_empty_conversations,
        }


class _Malformed(Exception):
    """Raised inside a parser; `import_file` turns it into a MiltonError naming file and location."""


def import_file(store: MemoryStore, path: Path, fmt: str = "auto", now: datetime | None = None) -> ImportReport:
    """Parse `path` and add its conversations to `store` in one transaction."""
    if fmt not in FORMATS:
        raise MiltonError(f"unknown format '{fmt}': choose one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise MiltonError(f"{path}: no such file; pass a conversations.json, export .zip or .jsonl file")
    now = now or datetime.now(timezone.utc)
    chosen = detect_format(path) if fmt == "auto" else fmt
    report = ImportReport(path=str(path), format=chosen)
    conversations = parse_file(path, chosen, now, report.counts)
    report.conversations_in_file = len(conversations) + report.counts.skipped_empty_conversations
    with store.transaction():
        for conversation in conversations:
            existing = store.message_count(conversation.source, conversation.source_id)
            if existing is None:
                store.insert_conversation(conversation)
                report.imported += 1
            elif len(conversation.messages) > existing:
                store.replace_conversation(conversation)
                report.updated += 1
            else:
                report.unchanged += 1
                continue
            report.messages_imported += len(conversation.messages)
    return report


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return "openai"
    if suffix == ".zip":
        return "chatgpt"
    data = _load_json(path, _read_text(path))
    first = data[0] if isinstance(data, list) and data else None
    if isinstance(first, dict) and "mapping" in first:
        return "chatgpt"
    if isinstance(first, dict) and "chat_messages" in first:
        return "claude"
    raise MiltonError(
        f"{path}: cannot tell the format (expected a ChatGPT or claude.ai conversations.json); "
        "pass --format chatgpt|claude|openai"
    )


def parse_file(path: Path, fmt: str, now: datetime, counts: ParseCounts) -> list[Conversation]:
    if fmt == "openai":
        return _parse_openai_jsonl(path, now, counts)
    text = _read_chatgpt_zip(path) if path.suffix.lower() == ".zip" else _read_text(path)
    data = _load_json(path, text)
    if not isinstance(data, list):
        raise MiltonError(f"{path}: expected a JSON list of conversations, found {type(data).__name__}")
    parse_one = _parse_chatgpt_conversation if fmt == "chatgpt" else _parse_claude_conversation
    result = []
    for index, raw in enumerate(data):
        try:
            if not isinstance(raw, dict):
                raise _Malformed(f"expected an object, found {type(raw).__name__}")
            conversation = parse_one(raw, now, counts)
        except _Malformed as exc:
            title = raw.get("title") or raw.get("name") if isinstance(raw, dict) else None
            label = f"conversation {index + 1}" + (f" ('{title}')" if title else "")
            raise MiltonError(f"{path}: {label}: {exc}; fix or remove it and import again") from None
        _keep(conversation, result, counts)
    return result


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise MiltonError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _read_chatgpt_zip(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "conversations.json"]
            if not names:
                raise MiltonError(f"{path}: the archive has no conversations.json; is it a ChatGPT data export?")
            return archive.read(min(names, key=len)).decode("utf-8")
    except zipfile.BadZipFile:
        raise MiltonError(f"{path}: not a valid zip archive") from None


def _load_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MiltonError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None


def parse_timestamp(value: Any, fallback: datetime) -> datetime:
    """Epoch seconds (or milliseconds) or an ISO-8601 string; None gives `fallback`."""
    if value is None or value == "":
        return fallback
    if isinstance(value, bool):
        raise _Malformed(f"timestamp {value!r} is not a time")
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _Malformed(f"timestamp '{value}' is not ISO-8601") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    raise _Malformed(f"timestamp {value!r} is not a time")


def _merge_same_role(messages: list[Message]) -> list[Message]:
    merged: list[Message] = []
    for message in messages:
        if merged and merged[-1].role == message.role:
            merged[-1] = Message(message.role, f"{merged[-1].content}\n\n{message.content}", merged[-1].created_at)
        else:
            merged.append(message)
    return merged


# --- ChatGPT -----------------------------------------------------------------------------------

_CHATGPT_TEXT_TYPES = {"text", "multimodal_text", "code"}


def _parse_chatgpt_conversation(raw: dict[str, Any], now: datetime, counts: ParseCounts) -> Conversation:
    conversation_id = raw.get("conversation_id") or raw.get("id")
    if not conversation_id:
        raise _Malformed("missing 'conversation_id'")
    mapping = raw.get("mapping")
    if not isinstance(mapping, dict):
        raise _Malformed("missing 'mapping' (the message tree)")
    created = parse_timestamp(raw.get("create_time"), now)
    messages = [
        message
        for node in _chatgpt_branch(mapping, raw.get("current_node"))
        if (message := _chatgpt_message(node.get("message"), created, counts)) is not None
    ]
    return Conversation("chatgpt", str(conversation_id), raw.get("title") or "", created, _merge_same_role(messages))


def _chatgpt_branch(mapping: dict[str, Any], current_node: Any) -> list[dict[str, Any]]:
    """The nodes from the root down to `current_node`: the branch the person last saw."""
    if current_node is None:
        # Older exports lack current_node: take the most recent leaf.
        leaves = [key for key, node in mapping.items() if isinstance(node, dict) and not node.get("children")]
        if not leaves:
            return []
        current_node = leaves[-1]
    branch: list[dict[str, Any]] = []
    seen: set[str] = set()
    key = current_node
    while key is not None:
        if key in seen:
            raise _Malformed(f"message tree has a cycle at node '{key}'")
        node = mapping.get(key)
        if not isinstance(node, dict):
            raise _Malformed(f"node '{key}' is referenced but missing from 'mapping'")
        seen.add(key)
        branch.append(node)
        key = node.get("parent")
    branch.reverse()
    return branch


def _chatgpt_message(message: Any, fallback: datetime, counts: ParseCounts) -> Message | None:
    if message is None:
        return None
    if not isinstance(message, dict):
        raise _Malformed(f"message is {type(message).__name__}, expected an object")
    author = message.get("author")
    if not isinstance(author, dict) or "role" not in author:
        raise _Malformed(f"message '{message.get('id', '?')}' has no author role")
    role = author["role"]
    metadata = message.get("metadata") or {}
    content = message.get("content") or {}
    content_type = content.get("content_type", "text")
    if role == "tool" or message.get("recipient", "all") != "all":
        counts.dropped_tool_turns += 1
        return None
    if metadata.get("is_visually_hidden_from_conversation") or content_type not in _CHATGPT_TEXT_TYPES:
        counts.dropped_hidden += 1
        return None
    if role not in ("system", "user", "assistant"):
        raise _Malformed(f"message '{message.get('id', '?')}' has unknown role '{role}'")
    text = _chatgpt_text(content).strip()
    if not text:
        return None
    return Message(role, text, parse_timestamp(message.get("create_time"), fallback))


def _chatgpt_text(content: dict[str, Any]) -> str:
    if content.get("content_type") == "code":
        return str(content.get("text") or "")
    pieces = []
    for part in content.get("parts") or []:
        if isinstance(part, str):
            pieces.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            pieces.append(part["text"])
    return "\n".join(p for p in pieces if p)


# --- claude.ai ---------------------------------------------------------------------------------

_CLAUDE_ROLES = {"human": "user", "assistant": "assistant"}


def _parse_claude_conversation(raw: dict[str, Any], now: datetime, counts: ParseCounts) -> Conversation:
    conversation_id = raw.get("uuid")
    if not conversation_id:
        raise _Malformed("missing 'uuid'")
    chat = raw.get("chat_messages")
    if not isinstance(chat, list):
        raise _Malformed("missing 'chat_messages' list")
    created = parse_timestamp(raw.get("created_at"), now)
    messages = []
    for position, item in enumerate(chat):
        if not isinstance(item, dict):
            raise _Malformed(f"message {position + 1} is not an object")
        sender = item.get("sender")
        if sender not in _CLAUDE_ROLES:
            raise _Malformed(f"message {position + 1} has sender {sender!r}, expected 'human' or 'assistant'")
        text = _claude_text(item, counts).strip()
        if text:
            messages.append(Message(_CLAUDE_ROLES[sender], text, parse_timestamp(item.get("created_at"), created)))
    return Conversation("claude", str(conversation_id), raw.get("name") or "", created, _merge_same_role(messages))


def _claude_text(item: dict[str, Any], counts: ParseCounts) -> str:
    blocks = item.get("content")
    if not isinstance(blocks, list) or not blocks:
        return str(item.get("text") or "")
    pieces = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            pieces.append(str(block.get("text") or ""))
        elif block.get("type") in ("tool_use", "tool_result"):
            counts.dropped_tool_turns += 1
    return "\n".join(p for p in pieces if p)


# --- OpenAI chat JSONL -------------------------------------------------------------------------

_OPENAI_DROPPED_ROLES = {"tool", "function"}


def _parse_openai_jsonl(path: Path, now: datetime, counts: ParseCounts) -> list[Conversation]:
    result = []
    for line_number, line in _numbered_lines(path):
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MiltonError(f"{path}:{line_number}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        try:
            conversation = _parse_openai_line(raw, now, counts)
        except _Malformed as exc:
            raise MiltonError(f"{path}:{line_number}: {exc}; fix or remove the line and import again") from None
        _keep(conversation, result, counts)
    return result


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if line.strip():
            yield number, line


def _parse_openai_line(raw: Any, now: datetime, counts: ParseCounts) -> Conversation:
    if not isinstance(raw, dict) or not isinstance(raw.get("messages"), list):
        raise _Malformed("expected an object with a 'messages' list")
    created = parse_timestamp(raw.get("created_at", raw.get("timestamp")), now)
    messages = []
    for position, item in enumerate(raw["messages"]):
        if not isinstance(item, dict) or "role" not in item:
            raise _Malformed(f"message {position + 1} needs a 'role'")
        role = item["role"]
        if role in _OPENAI_DROPPED_ROLES:
            counts.dropped_tool_turns += 1
            continue
        if role == "developer":
            role = "system"
        if role not in ("system", "user", "assistant"):
            raise _Malformed(f"message {position + 1} has unknown role '{role}'")
        text = _openai_text(item.get("content"), position).strip()
        if not text:
            if item.get("tool_calls"):
                counts.dropped_tool_turns += 1
            continue
        stamp = parse_timestamp(item.get("created_at", item.get("timestamp")), created)
        messages.append(Message(role, text, stamp))
    source_id = raw.get("id") or _content_hash(raw["messages"])
    return Conversation("openai", str(source_id), str(raw.get("title") or ""), created, _merge_same_role(messages))


def _openai_text(content: Any, position: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    raise _Malformed(f"message {position + 1} has content of type {type(content).__name__}")


def _content_hash(messages: list[Any]) -> str:
    # Lines without an id are identified by their content, so re-importing the file adds nothing.
    canonical = json.dumps(messages, sort_keys=True, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def _keep(conversation: Conversation, result: list[Conversation], counts: ParseCounts) -> None:
    """Keep a parsed conversation unless nothing of it survived; count the empty ones."""
    if conversation.messages:
        result.append(conversation)
    else:
        counts.skipped_empty_conversations += 1
