"""The SQLite conversation store: schema, migrations, inserts and queries.

The schema version lives in `PRAGMA user_version`; each migration moves it up by one inside a
transaction, so an interrupted upgrade leaves the old schema in place. Timestamps are stored as
ISO-8601 UTC strings.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from milton_lora.errors import MiltonError
from milton_lora.fileio import OWNER_FILE
from milton_lora.memory.models import ROLES, Attachment, Conversation, Message

MIGRATIONS: list[str] = [
    # 1: the original store: conversations and their ordered messages.
    """
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        created_at TEXT NOT NULL,
        position INTEGER NOT NULL
    );
    CREATE INDEX messages_by_conversation ON messages(conversation_id, position);
    """,
    # 2: provenance, so imports are idempotent and the export split is stable across machines.
    """
    ALTER TABLE conversations ADD COLUMN source TEXT NOT NULL DEFAULT 'milton';
    ALTER TABLE conversations ADD COLUMN source_id TEXT;
    UPDATE conversations SET source_id = CAST(id AS TEXT) WHERE source_id IS NULL;
    CREATE UNIQUE INDEX conversations_by_source ON conversations(source, source_id);
    CREATE INDEX messages_by_time ON messages(created_at);
    """,
    # 3: the text of files attached to a turn (JSON list of {name, content}), kept apart from what was typed.
    """
    ALTER TABLE messages ADD COLUMN attachments TEXT NOT NULL DEFAULT '[]';
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def to_iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


class MemoryStore:
    """One SQLite file of conversations. Use as a context manager or call `close()`."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, timeout=30)
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA journal_mode = WAL")
            # Deleted rows are overwritten with zeros, so a forgotten conversation leaves no bytes behind.
            self._db.execute("PRAGMA secure_delete = ON")
        except sqlite3.DatabaseError as exc:
            if not os.access(path.parent, os.W_OK):  # SQLite keeps its journal beside the file
                raise MiltonError(f"{path}: cannot open the memory store: {path.parent} is not writable; make it "
                                  "writable, or point MILTON_HOME at a writable folder") from exc  # fmt: skip
            raise MiltonError(f"{path}: not a readable SQLite memory store ({exc})") from exc
        self._migrate()
        for made in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if made.exists():  # owner-only even when opened outside the CLI (its umask) by a library caller
                made.chmod(OWNER_FILE)

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.schema_version
        if current > SCHEMA_VERSION:
            raise MiltonError(
                f"{self.path}: schema version {current} is newer than this milton-lora "
                f"understands ({SCHEMA_VERSION}); upgrade milton-lora"
            )
        for version in range(current, SCHEMA_VERSION):
            # executescript commits first, so the migration runs in an explicit transaction of its own.
            self._db.executescript(f"BEGIN;\n{MIGRATIONS[version]}\nPRAGMA user_version = {version + 1};\nCOMMIT;")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing block: an exception rolls back every insert made inside it."""
        with self._db:
            yield self._db

    def message_count(self, source: str, source_id: str) -> int | None:
        """How many messages the stored conversation has, or None if it is not stored."""
        row = self._db.execute(
            "SELECT (SELECT COUNT(*) FROM messages WHERE conversation_id = c.id) FROM conversations c "
            "WHERE c.source = ? AND c.source_id = ?",
            (source, source_id),
        ).fetchone()
        return None if row is None else int(row[0])

    def stored(self, source: str, source_id: str) -> Conversation | None:
        """The stored conversation with this provenance, or None; re-imports compare their content with it."""
        row = self._db.execute(
            "SELECT id, title, created_at FROM conversations WHERE source = ? AND source_id = ?", (source, source_id)
        ).fetchone()
        if row is None:
            return None
        conversation = Conversation(source, source_id, row[1], from_iso(row[2]), [], id=row[0])
        for message in self._db.execute(
            "SELECT role, content, created_at, attachments FROM messages WHERE conversation_id = ? ORDER BY position",
            (row[0],),
        ):
            conversation.messages.append(_message(*message))
        return conversation

    def replace_conversation(self, conversation: Conversation) -> int:
        """Swap a stored conversation for a newer version of it; call inside `transaction()`."""
        self._db.execute(
            "DELETE FROM conversations WHERE source = ? AND source_id = ?",
            (conversation.source, conversation.source_id),
        )
        return self.insert_conversation(conversation)

    def insert_conversation(self, conversation: Conversation) -> int:
        """Insert a conversation with its messages; call inside `transaction()`."""
        cursor = self._db.execute(
            "INSERT INTO conversations (source, source_id, title, created_at) VALUES (?, ?, ?, ?)",
            (conversation.source, conversation.source_id, conversation.title, to_iso(conversation.created_at)),
        )
        conversation_id = int(cursor.lastrowid)
        self._insert_messages(conversation_id, conversation.messages, start=0)
        return conversation_id

    def _insert_messages(self, conversation_id: int, messages: Iterable[Message], start: int) -> None:
        rows = []
        for offset, message in enumerate(messages):
            if message.role not in ROLES:
                raise MiltonError(f"role '{message.role}' is not one of {', '.join(ROLES)}")
            attachments = json.dumps([[a.name, a.content] for a in message.attachments], ensure_ascii=False)
            rows.append(
                (
                    conversation_id,
                    message.role,
                    message.content,
                    to_iso(message.created_at),
                    start + offset,
                    attachments,
                )
            )
        self._db.executemany(
            "INSERT INTO messages (conversation_id, role, content, created_at, position, attachments) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )

    def append_message(self, source: str, source_id: str, message: Message, title: str = "") -> int:
        """Append one turn to a conversation, creating it on first use; returns the conversation id."""
        with self.transaction():
            row = self._db.execute(
                "SELECT id FROM conversations WHERE source = ? AND source_id = ?", (source, source_id)
            ).fetchone()
            if row is None:
                conversation = Conversation(source, source_id, title, message.created_at, [message])
                return self.insert_conversation(conversation)
            conversation_id = int(row[0])
            (next_position,) = self._db.execute(
                "SELECT COALESCE(MAX(position) + 1, 0) FROM messages WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()
            self._insert_messages(conversation_id, [message], start=int(next_position))
            return conversation_id

    def conversations(self, since: datetime | None = None) -> list[Conversation]:
        """Conversations with at least one message at or after `since` (all when None), oldest first."""
        selected = "SELECT id FROM conversations"
        params: tuple[str, ...] = ()
        if since is not None:
            selected = "SELECT DISTINCT conversation_id FROM messages WHERE created_at >= ?"
            params = (to_iso(since),)
        result: dict[int, Conversation] = {}
        for row in self._db.execute(
            "SELECT id, source, source_id, title, created_at FROM conversations "
            f"WHERE id IN ({selected}) ORDER BY created_at, id",
            params,
        ):
            result[row[0]] = Conversation(row[1], row[2], row[3], from_iso(row[4]), [], id=row[0])
        for conversation_id, *message in self._db.execute(
            "SELECT conversation_id, role, content, created_at, attachments FROM messages "
            f"WHERE conversation_id IN ({selected}) ORDER BY conversation_id, position",
            params,
        ):
            result[conversation_id].messages.append(_message(*message))
        return list(result.values())

    def stats(self) -> dict[str, object]:
        conversations = self._db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0]
        messages, first, last = self._db.execute(
            "SELECT COUNT(*), MIN(created_at), MAX(created_at) FROM messages"
        ).fetchone()
        by_source = dict(self._db.execute("SELECT source, COUNT(*) FROM conversations GROUP BY source").fetchall())
        by_role = dict(self._db.execute("SELECT role, COUNT(*) FROM messages GROUP BY role").fetchall())
        return {
            "conversations": conversations,
            "messages": messages,
            "first_message_at": first,
            "last_message_at": last,
            "by_source": by_source,
            "by_role": by_role,
            "schema_version": self.schema_version,
            "path": str(self.path),
        }


def _message(role: str, content: str, created_at: str, attachments: str) -> Message:
    return Message(role, content, from_iso(created_at), [Attachment(*pair) for pair in json.loads(attachments)])
