"""Which conversations `memory forget` takes out of the store, and taking them out for good.

Decisions:
- A conversation is named by its store number (`memory stats` / `--json` show them) or its key
  (`source:source_id`, what lineage hashes); `--search` matches the title, any turn, a reply's abandoned
  alternatives or the person's edit of a reply (all of which an export may carry), case-insensitive;
  `--source` is the importer's source (`chatgpt`, `claude`, `openai`, `milton`, `milton-serve`);
  `--since/--until` pick conversations by when they started (`since` inclusive, `until` exclusive).
  Criteria given together must all hold.
- Forgetting deletes the rows and leaves no bytes of them in the SQLite file (see
  `MemoryStore.delete_forever`); what remains is a keyed hash of the identity, never text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from milton_lora.errors import MiltonError
from milton_lora.memory.models import Conversation
from milton_lora.memory.store import MemoryStore


@dataclass(frozen=True)
class ForgetQuery:
    """What to forget; at least one criterion must be given (forgetting everything is not a query)."""

    ids: Sequence[str] = ()
    search: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def is_empty(self) -> bool:
        return not self.ids and self.search is None and self.source is None and self.since is None and (
            self.until is None
        )  # fmt: skip

    def matches(self, conversation: Conversation, edits: Sequence[str] = ()) -> bool:
        """Whether every criterion given holds for `conversation`; `edits` are the person's edits of its replies."""
        checks = [
            not self.ids or str(conversation.id) in self.ids or conversation.key in self.ids,
            self.source is None or conversation.source == self.source,
            self.since is None or conversation.created_at >= self.since,
            self.until is None or conversation.created_at < self.until,
            self.search is None or _mentions(conversation, edits, self.search),
        ]
        return all(checks)


def _mentions(conversation: Conversation, edits: Sequence[str], text: str) -> bool:
    needle = text.casefold()
    texts = [conversation.title, *edits]
    for message in conversation.messages:
        texts += [message.content, *(alternative.content for alternative in message.alternatives)]
    return any(needle in candidate.casefold() for candidate in texts)


def select_conversations(store: MemoryStore, query: ForgetQuery) -> list[Conversation]:
    """The stored conversations `query` names; an id that names nothing stored is an error (a typo must not
    pass for a forget that happened)."""
    if query.is_empty():
        raise MiltonError("memory forget: name what to forget: conversation ids, --search, --source or --since/--until")
    edits: dict[int, list[str]] = {}
    for (conversation_id, _), given in store.feedback().items():
        if given.edited:
            edits.setdefault(conversation_id, []).append(given.edited)
    chosen = [c for c in store.conversations(with_alternatives=True) if query.matches(c, edits.get(c.id or 0, []))]
    named = {str(c.id) for c in chosen} | {c.key for c in chosen}
    missing = [i for i in query.ids if i not in named]
    if missing:
        raise MiltonError(
            f"memory forget: no stored conversation {', '.join(missing)} matches; "
            "list them with `milton-lora memory forget --search TEXT --dry-run` (already forgotten ones are gone)"
        )
    return chosen


def forget_conversations(
    store: MemoryStore, conversations: list[Conversation], reason: str, when: datetime
) -> list[str]:
    """Remove `conversations` from the store for good; returns their identity hashes (what lineage holds)."""
    identities = [store.identity_hash(c.key) for c in conversations]
    store.delete_forever(conversations, reason, when)
    return identities
