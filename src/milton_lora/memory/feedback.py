"""Judging a stored reply by hand, as `memory feedback` and the dashboard do: which reply is meant, and the
checks that make the judgement unambiguous, before the store records it (`MemoryStore.add_feedback`)."""

from __future__ import annotations

from datetime import datetime

from milton_lora.errors import MiltonError
from milton_lora.memory.models import RATINGS, Conversation
from milton_lora.memory.store import MemoryStore


def give_feedback(store: MemoryStore, conversation: str, turn: int | None, rating: str | None, edited: str | None,
                  source: str, when: datetime) -> tuple[Conversation, int]:  # fmt: skip
    """Record a thumbs `rating` and/or the `edited` reply on turn `turn` (1 = the first turn; None: the last
    reply) of `conversation` (its store number or key); returns the conversation and the turn judged."""
    if rating not in (None, *RATINGS):
        raise MiltonError(f"memory feedback: --rating '{rating}' is not up or down")
    if edited is not None and not edited.strip():
        raise MiltonError("memory feedback: the edited reply is empty")
    if rating is None and edited is None:
        raise MiltonError("memory feedback: give --rating up|down, --edited TEXT or --edited-file PATH")
    stored = store.stored(*store.key_of(conversation).split(":", 1))
    if stored is None or stored.id is None:
        raise MiltonError(f"memory feedback: no stored conversation {conversation}")
    replies = [n for n, m in enumerate(stored.messages, start=1) if m.role == "assistant"]
    number = turn if turn is not None else (replies[-1] if replies else 0)
    if number not in replies:
        raise MiltonError(
            f"memory feedback: turn {number} of {stored.key} is not a reply; its replies are turns "
            f"{', '.join(map(str, replies)) or '(none)'}"
        )
    store.add_feedback(stored.id, number - 1, rating, edited, source, when)
    return stored, number
