"""Plain data types for conversations as they move between importers, the store and the export, and the
preference signals kept with them (abandoned alternative replies, feedback on a reply)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Attachment:
    """The text of a file attached to a turn (claude.ai's `extracted_content`), kept apart from what was typed."""

    name: str
    content: str


@dataclass(frozen=True)
class Alternative:
    """A reply the person abandoned for the one kept (a ChatGPT regeneration: a sibling off the kept path)."""

    content: str
    created_at: datetime


@dataclass
class Message:
    """One turn of the kept path. `alternatives` (assistant turns only) are the sibling replies the person
    regenerated away from; they are never turns of the conversation and are loaded only when asked for."""

    role: str
    content: str
    created_at: datetime
    attachments: list[Attachment] = field(default_factory=list)
    alternatives: list[Alternative] = field(default_factory=list)

    def text(self, include_attachments: bool) -> str:
        """The turn as the model saw it: each attachment marked as one, before the typed text."""
        if not include_attachments or not self.attachments:
            return self.content
        blocks = [f'<attachment name="{a.name}">\n{a.content}\n</attachment>' for a in self.attachments]
        return "\n\n".join([*blocks, self.content] if self.content else blocks)


# Where a stored conversation came from, by its source (the importers', `memory add`'s and serve's capture's).
SOURCE_ORIGINS = {
    "chatgpt": "import file (a ChatGPT export)",
    "claude": "import file (a claude.ai export)",
    "openai": "import file (OpenAI-format .jsonl)",
    "milton": "cli (milton-lora memory add)",
    "milton-serve": "served (captured by milton-lora serve)",
}
RATINGS = ("up", "down")
FEEDBACK_SOURCES = ("served", "cli", "ui")


@dataclass(frozen=True)
class Feedback:
    """What the person said about one reply: a thumbs `rating` (`up`/`down`), the text they `edited` it into,
    or both; `source` is where it came from (`served`: `POST /v1/feedback`; `cli`: `memory feedback`; `ui`: the
    dashboard)."""

    rating: str | None
    edited: str | None
    source: str
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

    def fingerprint(self) -> str:
        """What the person saw, hashed (roles, texts, attachments; not timestamps, which imports may fill in)."""
        shown: list[list[object]] = [
            [m.role, m.content, [[a.name, a.content] for a in m.attachments]] for m in self.messages
        ]
        # Abandoned replies count only where there are any, so a conversation without them hashes as before.
        for position, message in enumerate(self.messages):
            if message.alternatives:
                shown.append([position, [a.content for a in message.alternatives]])
        return hashlib.sha256(json.dumps(shown, ensure_ascii=False).encode("utf-8")).hexdigest()
