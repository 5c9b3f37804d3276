"""ChatGPT data exports (`conversations.json`, alone or in the export zip): one conversation per record.

A conversation is a tree of message nodes (`mapping`); every edit or regeneration starts a sibling branch.
What is kept is the branch the person last saw: the path from the root to `current_node`
(`current_branch`). Off that path, only regenerations are kept, apart, as preference signals
(`Message.alternatives` of the kept reply, never turns of the conversation):
- an assistant node that is a sibling of a kept assistant reply (same parent: the same prompt answered
  again) is an abandoned alternative to it, in the tree's order; only its own visible text is kept, read
  as a kept turn is (markers stripped), and a sibling that is hidden, a tool call, empty or unreadable is
  left out;
- an abandoned branch's own follow-ups (the person's next turns under the abandoned reply, a continuation
  of it) are not kept: they answer a reply the person did not keep;
- an edited user turn (a sibling of a kept user turn) gives no pair: the two replies answer different prompts.
On the kept path:
- user, assistant and non-empty visible system text is kept; multimodal parts keep their text;
- tool turns (`tool` role; assistant messages addressed to a tool: code-interpreter code, browsing
  queries) and hidden turns (`is_visually_hidden_from_conversation`, reasoning `thoughts`, any content
  that is not text) are stripped and counted;
- an answer cut by the length limit and continued ("Continue generating": its `finish_details` say
  `max_tokens`) is joined to its continuation exactly, as the person saw it;
- citation and tool markers are taken out of the text (`markers.py`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from milton_lora.memory.imports.common import Malformed, ParseCounts, Piece, joined, parse_timestamp, text_of
from milton_lora.memory.imports.markers import strip_markers
from milton_lora.memory.models import Alternative, Conversation, Message

_TEXT_TYPES = {"text", "multimodal_text", "code"}
_CUT = {"max_tokens"}


def parse(raw: dict[str, Any], now: datetime, counts: ParseCounts) -> Conversation:
    conversation_id = raw.get("conversation_id") or raw.get("id")
    if not isinstance(conversation_id, str) or not conversation_id:
        raise Malformed("missing 'conversation_id'")
    mapping = raw.get("mapping")
    if not isinstance(mapping, dict):
        raise Malformed("missing 'mapping' (the message tree)")
    created = parse_timestamp(raw.get("create_time"), now)
    pieces: list[Piece] = []
    cut = False
    branch = current_branch(mapping, raw.get("current_node"))
    for index, node in enumerate(branch):
        piece = _piece(node.get("message"), created, counts)
        if piece is None:
            continue
        if piece.message.role == "assistant" and index > 0:
            piece.message.alternatives = _abandoned(mapping, branch[index - 1], node, created)
            counts.abandoned_replies_kept += len(piece.message.alternatives)
        piece.continues = cut and piece.message.role == "assistant"
        cut = piece.message.role == "assistant" and _was_cut(node["message"])
        pieces.append(piece)
    title = raw.get("title") if isinstance(raw.get("title"), str) else ""
    return Conversation("chatgpt", conversation_id, title, created, joined(pieces, counts))


def current_branch(mapping: dict[str, Any], current_node: Any) -> list[dict[str, Any]]:
    """The nodes from the root down to `current_node`: the branch the person last saw. Nodes of `mapping`
    off this path are abandoned branches (edits, regenerations)."""
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
        if not isinstance(key, str) or key in seen:
            raise Malformed(f"message tree has a cycle at node '{str(key)[:40]}'")
        node = mapping.get(key)
        if not isinstance(node, dict):
            raise Malformed(f"node '{key[:40]}' is referenced but missing from 'mapping'")
        seen.add(key)
        branch.append(node)
        key = node.get("parent")
    branch.reverse()
    return branch


def _abandoned(
    mapping: dict[str, Any], parent: dict[str, Any], kept: dict[str, Any], fallback: datetime
) -> list[Alternative]:
    """The readable assistant replies among `kept`'s siblings: the answers the person regenerated away from."""
    found = []
    children = parent.get("children")
    for key in children if isinstance(children, list) else []:
        node = mapping.get(key) if isinstance(key, str) else None
        if node is kept or not isinstance(node, dict):
            continue
        try:
            piece = _piece(node.get("message"), fallback, ParseCounts())
        except Malformed:
            continue  # off the kept path: an unreadable sibling costs its signal, not the conversation
        if piece is not None and piece.message.role == "assistant" and piece.message.content.strip():
            found.append(Alternative(piece.message.content.strip(), piece.message.created_at))
    return found


def _was_cut(message: dict[str, Any]) -> bool:
    metadata = message.get("metadata") or {}
    details = metadata.get("finish_details") if isinstance(metadata, dict) else None
    return isinstance(details, dict) and details.get("type") in _CUT


def _piece(message: Any, fallback: datetime, counts: ParseCounts) -> Piece | None:
    if message is None:
        return None
    if not isinstance(message, dict):
        raise Malformed(f"message is {type(message).__name__}, expected an object")
    author = message.get("author")
    if not isinstance(author, dict) or "role" not in author:
        raise Malformed(f"message '{str(message.get('id', '?'))[:40]}' has no author role")
    role = author["role"]
    metadata = message.get("metadata") or {}
    content = message.get("content") or {}
    if not isinstance(content, dict) or not isinstance(metadata, dict):
        raise Malformed(f"message '{str(message.get('id', '?'))[:40]}' has content or metadata that is no object")
    if role == "tool" or message.get("recipient", "all") != "all":
        counts.tool_turns_stripped += 1
        return None
    if metadata.get("is_visually_hidden_from_conversation") or content.get("content_type", "text") not in _TEXT_TYPES:
        counts.hidden_turns_stripped += 1
        return None
    if role not in ("system", "user", "assistant"):
        raise Malformed(f"message '{str(message.get('id', '?'))[:40]}' has unknown role '{str(role)[:20]}'")
    text, markers = strip_markers(_text(content))
    counts.citation_markers_stripped += markers
    return Piece(Message(role, text, parse_timestamp(message.get("create_time"), fallback)))


def _text(content: dict[str, Any]) -> str:
    if content.get("content_type") == "code":
        return text_of(content.get("text"), "code content")
    parts = content.get("parts") or []
    if not isinstance(parts, list):
        raise Malformed("message 'parts' is not a list")
    pieces = []
    for part in parts:
        if isinstance(part, str):
            pieces.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            pieces.append(part["text"])
    return "\n".join(p for p in pieces if p)
