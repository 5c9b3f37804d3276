"""The SQLite conversation store: schema, migrations, inserts and queries.

The schema version lives in `PRAGMA user_version`; each migration moves it up by one inside a
transaction, so an interrupted upgrade leaves the old schema in place. Timestamps are stored as
ISO-8601 UTC strings.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from milton_lora.errors import MiltonError
from milton_lora.fileio import OWNER_FILE
from milton_lora.memory.models import (
    FEEDBACK_SOURCES,
    RATINGS,
    ROLES,
    Alternative,
    Attachment,
    Conversation,
    Feedback,
    Message,
)

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
    # 4: forgetting. The home's secret keys the hashes that name conversations in tombstones and lineage;
    # a tombstone is such a hash (never text), so a re-import does not bring the conversation back.
    """
    CREATE TABLE home_secret (id INTEGER PRIMARY KEY CHECK (id = 1), key BLOB NOT NULL);
    CREATE TABLE tombstones (
        identity TEXT PRIMARY KEY,
        forgotten_at TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT ''
    );
    """,
    # 5: preference signals. `alternatives` are the replies the person abandoned for the kept one at
    # `position` (ChatGPT regenerations: siblings off the kept path), apart from `messages` so no reader of
    # turns ever sees them; `feedback` is one judgement per reply; `served_replies` maps a served completion's
    # id to the captured reply it produced. All go with their conversation.
    """
    CREATE TABLE alternatives (
        id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        content TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX alternatives_by_conversation ON alternatives(conversation_id, position);
    CREATE TABLE feedback (
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        rating TEXT CHECK (rating IN ('up', 'down')),
        edited TEXT,
        source TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (conversation_id, position)
    );
    CREATE TABLE served_replies (
        response_id TEXT PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        position INTEGER NOT NULL
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
# Ids per `IN (...)` query: well under SQLite's limit on bound parameters.
_CHUNK = 500


def to_iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


class MemoryStore:
    """One SQLite file of conversations. Use as a context manager or call `close()`.

    Forgotten conversations (a tombstone holds their identity hash) are skipped on insert, unless the store
    is opened with `include_forgotten=True`, which lifts the tombstone of what it inserts.
    """

    def __init__(self, path: Path, include_forgotten: bool = False):
        self.path = path
        self.include_forgotten = include_forgotten
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
        self._add_alternatives({row[0]: conversation})
        return conversation

    def opening_with(self, source: str, opening: list[Message], length: int | None = None) -> list[Conversation]:
        """The stored conversations of `source` whose first turns are `opening` (role and text), of `length`
        messages when given, with their replies' alternatives."""
        same_turn = (
            "EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.position = ? AND m.role = ? "
            "AND m.content = ?)"
        )
        clauses = [same_turn] * len(opening)
        values: list[object] = [v for i, m in enumerate(opening) for v in (i, m.role, m.content)]
        if length is not None:
            clauses.append("(SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) = ?")
            values.append(length)
        rows = self._db.execute(
            f"SELECT c.source_id FROM conversations c WHERE c.source = ? AND {' AND '.join(clauses)}",
            (source, *values),
        ).fetchall()
        return [found for (source_id,) in rows if (found := self.stored(source, source_id)) is not None]

    def replace_conversation(self, conversation: Conversation) -> int | None:
        """Swap a stored conversation for a newer version of it, in place (its number, and the feedback and
        served ids of every reply that did not change, stay); call inside `transaction()`."""
        row = self._db.execute(
            "SELECT id FROM conversations WHERE source = ? AND source_id = ?",
            (conversation.source, conversation.source_id),
        ).fetchone()
        if row is None:
            return self.insert_conversation(conversation)
        conversation_id = int(row[0])
        before = self._db.execute(
            "SELECT position, role, content FROM messages WHERE conversation_id = ?", (conversation_id,)
        ).fetchall()
        self._db.execute(
            "UPDATE conversations SET title = ?, created_at = ? WHERE id = ?",
            (conversation.title, to_iso(conversation.created_at), conversation_id),
        )
        for table in ("messages", "alternatives"):
            self._db.execute(f"DELETE FROM {table} WHERE conversation_id = ?", (conversation_id,))
        self._insert_messages(conversation_id, conversation.messages, start=0)
        now = conversation.messages
        changed = [
            (conversation_id, position)
            for position, role, content in before
            if position >= len(now) or (now[position].role, now[position].content) != (role, content)
        ]
        for table in ("feedback", "served_replies"):  # a judgement belongs to the reply it was given on
            self._db.executemany(f"DELETE FROM {table} WHERE conversation_id = ? AND position = ?", changed)
        return conversation_id

    def insert_conversation(self, conversation: Conversation) -> int | None:
        """Insert a conversation with its messages; call inside `transaction()`. A forgotten one is not
        inserted (None) unless the store was opened with `include_forgotten`."""
        identity = self.identity_hash(conversation.key)
        if self.include_forgotten:
            self._db.execute("DELETE FROM tombstones WHERE identity = ?", (identity,))
        elif self.is_forgotten(identity):
            return None
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
        self._db.executemany(
            "INSERT INTO alternatives (conversation_id, position, content, created_at) VALUES (?, ?, ?, ?)",
            [
                (conversation_id, start + offset, alternative.content, to_iso(alternative.created_at))
                for offset, message in enumerate(messages)
                for alternative in message.alternatives
            ],
        )

    def append_message(self, source: str, source_id: str, message: Message, title: str = "") -> int | None:
        """Append one turn to a conversation, creating it on first use; returns the conversation id (None when
        the conversation was forgotten)."""
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

    def conversations(self, since: datetime | None = None, with_alternatives: bool = False) -> list[Conversation]:
        """Conversations with at least one message at or after `since` (all when None), oldest first; their
        replies' abandoned alternatives only `with_alternatives`."""
        selected = "SELECT id FROM conversations"
        params: tuple[str, ...] = ()
        if since is not None:
            selected = "SELECT DISTINCT conversation_id FROM messages WHERE created_at >= ?"
            params = (to_iso(since),)
        found = self._load(selected, params)
        if with_alternatives:
            self._add_alternatives({c.id: c for c in found if c.id is not None})
        return found

    def _add_alternatives(self, by_id: dict[int, Conversation]) -> None:
        ids = list(by_id)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            rows = self._db.execute(
                "SELECT conversation_id, position, content, created_at FROM alternatives "
                f"WHERE conversation_id IN ({','.join('?' * len(chunk))}) ORDER BY id",
                chunk,
            )
            for conversation_id, position, content, created_at in rows:
                by_id[conversation_id].messages[position].alternatives.append(
                    Alternative(content, from_iso(created_at))
                )

    def conversation(self, conversation_id: int) -> Conversation | None:
        """One stored conversation with its messages, or None."""
        found = self._load("SELECT ?", (conversation_id,))
        return found[0] if found else None

    def _load(self, selected: str, params: tuple[object, ...]) -> list[Conversation]:
        """The conversations whose ids the query `selected` returns, with their messages, oldest first."""
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

    # --- feedback -------------------------------------------------------------------------------

    def add_feedback(
        self, conversation_id: int, position: int, rating: str | None, edited: str | None, source: str, when: datetime
    ) -> None:
        """Record what the person said about the reply at `position`. A later judgement of the same reply
        replaces the earlier one, keeping what it does not say (a thumbs, then an edit, keeps both)."""
        if rating not in (None, *RATINGS) or source not in FEEDBACK_SOURCES:
            raise MiltonError(f"feedback: rating must be one of {', '.join(RATINGS)} and source one of "
                              f"{', '.join(FEEDBACK_SOURCES)}")  # fmt: skip
        if rating is None and edited is None:
            raise MiltonError("feedback: give a rating, an edited reply, or both")
        role = self._db.execute(
            "SELECT role FROM messages WHERE conversation_id = ? AND position = ?", (conversation_id, position)
        ).fetchone()
        if role is None or role[0] != "assistant":
            raise MiltonError(f"feedback: turn {position + 1} of conversation #{conversation_id} is not a reply")
        with self.transaction():
            self._db.execute(
                "INSERT INTO feedback (conversation_id, position, rating, edited, source, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (conversation_id, position) DO UPDATE SET "
                "rating = COALESCE(excluded.rating, rating), edited = COALESCE(excluded.edited, edited), "
                "source = excluded.source, created_at = excluded.created_at",
                (conversation_id, position, rating, edited, source, to_iso(when)),
            )

    def feedback(self) -> dict[tuple[int, int], Feedback]:
        """Every reply's feedback, by (conversation number, position of the reply)."""
        rows = self._db.execute("SELECT conversation_id, position, rating, edited, source, created_at FROM feedback")
        return {(row[0], row[1]): Feedback(row[2], row[3], row[4], from_iso(row[5])) for row in rows}

    def remember_reply(self, response_id: str, conversation_id: int, position: int) -> None:
        """Name the captured reply at `position` by the completion id the server answered it with; call inside
        `transaction()`."""
        self._db.execute(
            "INSERT OR REPLACE INTO served_replies (response_id, conversation_id, position) VALUES (?, ?, ?)",
            (response_id, conversation_id, position),
        )

    def reply_of(self, response_id: str) -> tuple[int, int] | None:
        """The (conversation number, position) of the captured reply a completion id names, or None."""
        row = self._db.execute(
            "SELECT conversation_id, position FROM served_replies WHERE response_id = ?", (response_id,)
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    # --- forgetting -------------------------------------------------------------------------------

    def _home_key(self) -> bytes:
        row = self._db.execute("SELECT key FROM home_secret WHERE id = 1").fetchone()
        if row is None:
            with self._db:
                self._db.execute(
                    "INSERT OR IGNORE INTO home_secret (id, key) VALUES (1, ?)", (secrets.token_bytes(32),)
                )
            row = self._db.execute("SELECT key FROM home_secret WHERE id = 1").fetchone()
        return bytes(row[0])

    def keyed_hash(self, *parts: str) -> str:
        """HMAC-SHA256 under this home's secret: a name for private text that cannot be guessed back from it."""
        return hmac.new(self._home_key(), "\x00".join(parts).encode("utf-8"), hashlib.sha256).hexdigest()

    def identity_hash(self, conversation_key: str) -> str:
        """The keyed hash of a conversation's identity (`source:source_id`): what tombstones and lineage hold."""
        return self.keyed_hash("identity", conversation_key)

    def version_hash(self, conversation: Conversation) -> str:
        """The keyed hash of a conversation's content (its turns as stored): which version training saw."""
        turns = json.dumps([(m.role, m.content) for m in conversation.messages], ensure_ascii=False)
        return self.keyed_hash("version", conversation.key, turns)

    def key_of(self, name: str) -> str:
        """A conversation's key from its store number or its key (a forgotten one only by key)."""
        if name.isdigit():
            row = self._db.execute("SELECT source, source_id FROM conversations WHERE id = ?", (int(name),)).fetchone()
            if row is None:
                raise MiltonError(f"no stored conversation #{name}; a forgotten one is named by its key source:id")
            return f"{row[0]}:{row[1]}"
        if ":" not in name:
            raise MiltonError(f"'{name}' is neither a conversation number nor a key like chatgpt:ID")
        return name

    def is_forgotten(self, identity: str) -> bool:
        return self._db.execute("SELECT 1 FROM tombstones WHERE identity = ?", (identity,)).fetchone() is not None

    def tombstones(self) -> dict[str, str]:
        """Every forgotten conversation's identity hash -> when it was forgotten."""
        return dict(self._db.execute("SELECT identity, forgotten_at FROM tombstones").fetchall())

    def delete_forever(self, conversations: list[Conversation], reason: str, when: datetime) -> None:
        """Delete `conversations`, leave a tombstone for each, and leave none of their bytes in the file:
        secure_delete zeroes freed pages, the WAL is checkpointed and truncated, and VACUUM rewrites the file."""
        with self.transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO tombstones (identity, forgotten_at, reason) VALUES (?, ?, ?)",
                [(self.identity_hash(c.key), to_iso(when), reason) for c in conversations],
            )
            self._db.executemany("DELETE FROM conversations WHERE id = ?", [(c.id,) for c in conversations])
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.execute("VACUUM")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

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
            "abandoned_replies": self._db.execute("SELECT COUNT(*) FROM alternatives").fetchone()[0],
            "feedback": self._db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0],
            "forgotten": self._db.execute("SELECT COUNT(*) FROM tombstones").fetchone()[0],
            "schema_version": self.schema_version,
            "path": str(self.path),
        }


def _message(role: str, content: str, created_at: str, attachments: str) -> Message:
    return Message(role, content, from_iso(created_at), [Attachment(*pair) for pair in json.loads(attachments)])
