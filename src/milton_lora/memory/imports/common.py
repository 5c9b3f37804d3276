"""What the per-service parsers share: the counts they keep, timestamps, and joining a service's pieces into turns."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import Any

from milton_lora.memory.models import Message


class Malformed(Exception):
    """A record that is not a conversation of the format; the import skips it and reports why."""


@dataclass
class ParseCounts:
    """What the parsers changed on the way in, by the README's four words: kept, repaired, stripped, skipped."""

    attachments_kept: int = 0
    continuations_joined: int = 0
    tool_turns_stripped: int = 0
    hidden_turns_stripped: int = 0
    citation_markers_stripped: int = 0
    empty_conversations_skipped: int = 0
    abandoned_replies_kept: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Piece:
    """One message as a service stores it; `continues` marks a chunk that goes on the previous one's last word."""

    message: Message
    continues: bool = False


def parse_timestamp(value: Any, fallback: datetime) -> datetime:
    """Epoch seconds (or milliseconds) or an ISO-8601 string; None gives `fallback`."""
    if value is None or value == "":
        return fallback
    if isinstance(value, bool):
        raise Malformed(f"timestamp {value!r} is not a time")
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise Malformed(f"timestamp {value!r} is out of range") from None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise Malformed(f"timestamp '{value[:40]}' is not ISO-8601") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    raise Malformed(f"timestamp of type {type(value).__name__} is not a time")


def joined(pieces: list[Piece], counts: ParseCounts) -> list[Message]:
    """Turns as the person saw them: a continued chunk joins its answer exactly (no separator, so no word or code
    block is split); other same-role neighbours (left by stripped tool turns) join with a blank line; empty
    turns go."""
    turns: list[Message] = []
    for piece in pieces:
        message = piece.message
        previous = turns[-1] if turns else None
        if previous is None or previous.role != message.role:
            turns.append(
                Message(
                    message.role,
                    message.content,
                    message.created_at,
                    list(message.attachments),
                    list(message.alternatives),
                )
            )
            continue
        if piece.continues:
            counts.continuations_joined += 1
            previous.content += message.content
        else:
            previous.content = "\n\n".join(p for p in (previous.content.rstrip(), message.content.lstrip()) if p)
        previous.attachments += message.attachments
        previous.alternatives += message.alternatives
    for turn in turns:
        turn.content = turn.content.strip()
    return [t for t in turns if t.content or t.attachments]


def text_of(value: Any, what: str) -> str:
    """A field that must be text (or missing)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Malformed(f"{what} is {type(value).__name__}, expected text")
    return value
