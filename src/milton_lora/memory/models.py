"""Plain data types for conversations as they move between importers, the store and the export."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

ROLES = ("system", "user", "assistant")


@dataclass
class Message:
    role: str
    content: str
    created_at: datetime


@dataclass
class Conversation:
    source: str
    source_id: str
    title: str
    created_at: datetime
    messages: list[Message] = field(default_factory=list)
    id: int | None = None

    @property
    def key(self) -> str:
        """Stable identity across machines and re-imports; the export hashes it to pick the split."""
        return f"{self.source}:{self.source_id}"

    @property
    def last_message_at(self) -> datetime:
        return max((m.created_at for m in self.messages), default=self.created_at)
