"""Conversation exports written in the shapes ChatGPT and claude.ai really produce (their 2024-2025 data
exports: every field a real record carries, not only the ones the importer reads), and the zips they ship in.

`chatgpt_conversation` builds the node tree: a null root, a hidden system node, then the given nodes in
order unless a node names its parent (a regeneration is a sibling of the answer it replaced);
`chatgpt_regenerated` builds a chat whose answers were regenerated, with an abandoned branch's follow-up.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

T0 = 1_730_000_000.0  # 2024-10-27


@dataclass
class Node:
    role: str
    parts: list[Any]
    id: str = ""
    parent: str | None = None
    content_type: str = "text"
    recipient: str = "all"
    finish: str | None = "stop"
    metadata: dict[str, Any] = field(default_factory=dict)


def chatgpt_conversation(conversation_id: str, title: str, nodes: list[Node], current: str | None = None) -> dict:
    mapping: dict[str, dict] = {
        "client-created-root": {"id": "client-created-root", "message": None, "parent": None, "children": []}
    }
    hidden = _chatgpt_message("sys-0", "system", [""], T0, metadata={"is_visually_hidden_from_conversation": True})
    _link(mapping, "sys-0", hidden, "client-created-root")
    previous = "sys-0"
    for number, node in enumerate(nodes, start=1):
        node_id = node.id or f"n{number}"
        metadata = dict(node.metadata)
        if node.role == "assistant" and node.finish:
            metadata["finish_details"] = (
                {"type": "stop", "stop_tokens": [200002]} if node.finish == "stop" else {"type": node.finish}
            )
        message = _chatgpt_message(
            node_id, node.role, node.parts, T0 + 60 * number, node.content_type, node.recipient, metadata
        )
        _link(mapping, node_id, message, node.parent or previous)
        previous = node_id
    return {
        "title": title,
        "create_time": T0,
        "update_time": T0 + 60 * len(nodes),
        "mapping": mapping,
        "moderation_results": [],
        "current_node": current or previous,
        "plugin_ids": None,
        "conversation_id": conversation_id,
        "conversation_template_id": None,
        "gizmo_id": None,
        "gizmo_type": None,
        "is_archived": False,
        "is_starred": None,
        "safe_urls": [],
        "blocked_urls": [],
        "default_model_slug": "gpt-4o",
        "conversation_origin": None,
        "voice": None,
        "async_status": None,
        "disabled_tool_ids": [],
        "id": conversation_id,
    }


def chatgpt_regenerated(
    conversation_id: str, title: str, exchanges: list[tuple[str, list[str]]], abandoned_follow_up: str | None = None
) -> dict:
    """A chat as ChatGPT stores regenerations: each user turn answered by its `replies` in the order they were
    generated, every one a sibling under the user turn, the last the one kept (the current branch runs through
    it). `abandoned_follow_up`: the person first went on under the first exchange's first reply with this
    turn (and got an answer) before going back to regenerate it: that abandoned branch's own follow-up."""
    nodes: list[Node] = []
    parent: str | None = None
    for number, (question, replies) in enumerate(exchanges, start=1):
        nodes.append(Node("user", [question], id=f"u{number}", parent=parent))
        kept = ""
        for index, reply in enumerate(replies):
            kept = f"u{number}-r{index}"
            nodes.append(Node("assistant", [reply], id=kept, parent=f"u{number}"))
            if number == 1 and index == 0 and abandoned_follow_up:
                nodes.append(Node("user", [abandoned_follow_up], id="off-u", parent=kept))
                nodes.append(Node("assistant", ["Then try again later."], id="off-a", parent="off-u"))
        parent = kept
    nodes[0].parent = "sys-0"
    return chatgpt_conversation(conversation_id, title, nodes, current=parent)


def _chatgpt_message(
    node_id: str,
    role: str,
    parts: list[Any],
    when: float,
    content_type: str = "text",
    recipient: str = "all",
    metadata: dict[str, Any] | None = None,
) -> dict:
    content: dict[str, Any] = {"content_type": content_type}
    if content_type == "code":
        content.update(language="unknown", response_format_name=None, text=parts[0])
    else:
        content["parts"] = parts
    return {
        "id": node_id,
        "author": {"role": role, "name": "python" if role == "tool" else None, "metadata": {}},
        "create_time": None if role == "system" else when,
        "update_time": None,
        "content": content,
        "status": "finished_successfully",
        "end_turn": role == "assistant" or None,
        "weight": 0.0 if role == "system" else 1.0,
        "metadata": {"request_id": "8d1f-req", "message_type": None, "model_slug": "gpt-4o", **(metadata or {})},
        "recipient": recipient,
        "channel": None,
    }


def _link(mapping: dict[str, dict], node_id: str, message: dict, parent: str) -> None:
    mapping[node_id] = {"id": node_id, "message": message, "parent": parent, "children": []}
    mapping[parent]["children"].append(node_id)


def claude_conversation(uuid: str, name: str, turns: list[tuple[str, str]], attachments: dict | None = None) -> dict:
    """`turns` are (sender, text); `attachments` maps a turn's index to its attachments list."""
    messages = []
    for index, (sender, text) in enumerate(turns):
        stamp = f"2025-03-0{1 + index // 10}T10:{index % 10:02d}:00.000000Z"
        messages.append(
            {
                "uuid": f"{uuid}-m{index}",
                "text": text,
                "content": [
                    {
                        "start_timestamp": stamp,
                        "stop_timestamp": stamp,
                        "type": "text",
                        "text": text,
                        "citations": [],
                    }
                ],
                "sender": sender,
                "created_at": stamp,
                "updated_at": stamp,
                "attachments": (attachments or {}).get(index, []),
                "files": [{"file_name": a["file_name"]} for a in (attachments or {}).get(index, [])],
            }
        )
    return {
        "uuid": uuid,
        "name": name,
        "summary": "",
        "created_at": "2025-03-01T10:00:00.000000Z",
        "updated_at": messages[-1]["updated_at"] if messages else "2025-03-01T10:00:00.000000Z",
        "account": {"uuid": "5b2c-account"},
        "chat_messages": messages,
    }


def chatgpt_zip(path: Path, conversations: list[dict]) -> Path:
    """The ChatGPT export zip: conversations.json with chat.html, user.json and the uploaded files beside it."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("conversations.json", json.dumps(conversations, indent=None))
        archive.writestr("chat.html", "<html><body>ChatGPT export</body></html>")
        archive.writestr("user.json", json.dumps({"id": "user-abc", "email": "a@example.com"}))
        archive.writestr("message_feedback.json", "[]")
        archive.writestr("file-8Xq2-photo.png", b"\x89PNG\r\n\x1a\n")
    return path


def claude_zip(path: Path, conversations: list[dict]) -> Path:
    """The claude.ai export zip: conversations.json, users.json and projects.json."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("conversations.json", json.dumps(conversations))
        archive.writestr("users.json", json.dumps([{"uuid": "5b2c-account", "full_name": "A", "email_address": "a@x"}]))
        archive.writestr("projects.json", "[]")
    return path
