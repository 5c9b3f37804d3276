"""Conversation memory: the local SQLite store and the importers that fill it."""

from milton_lora.memory.models import Conversation, Message
from milton_lora.memory.store import MemoryStore

__all__ = ["Conversation", "MemoryStore", "Message"]
