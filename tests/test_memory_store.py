import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from milton_lora.errors import MiltonError
from milton_lora.memory import Conversation, MemoryStore, Message
from milton_lora.memory.store import MIGRATIONS, SCHEMA_VERSION

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def test_migrates_a_version_1_store_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    db.execute("INSERT INTO conversations (id, title, created_at) VALUES (7, 'old chat', ?)", (T0.isoformat(),))
    db.execute(
        "INSERT INTO messages (conversation_id, role, content, created_at, position) VALUES (7, 'user', 'hi', ?, 0)",
        (T0.isoformat(),),
    )
    db.commit()
    db.close()
    with MemoryStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        [conversation] = store.conversations()
        assert (conversation.source, conversation.source_id, conversation.title) == ("milton", "7", "old chat")
        assert [m.content for m in conversation.messages] == ["hi"]
        # The migration added the provenance index: the same source id cannot be stored twice.
        with pytest.raises(sqlite3.IntegrityError), store.transaction():
            store.insert_conversation(Conversation("milton", "7", "dup", T0, []))


def test_refuses_a_store_from_a_newer_version(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    sqlite3.connect(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}").connection.close()
    with pytest.raises(MiltonError, match="newer than this milton-lora"):
        MemoryStore(path)


def test_append_message_creates_then_extends_in_order(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "m.db") as store:
        first = store.append_message("milton", "chat-1", Message("user", "one", T0), title="Chat")
        second = store.append_message("milton", "chat-1", Message("assistant", "two", T0 + timedelta(seconds=1)))
        assert first == second
        [conversation] = store.conversations()
        assert [(m.role, m.content) for m in conversation.messages] == [("user", "one"), ("assistant", "two")]
        assert store.stats()["messages"] == 2


def test_window_selects_conversations_with_a_recent_message(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "m.db") as store, store.transaction():
        store.insert_conversation(
            Conversation("s", "old", "", T0 - timedelta(days=40), [Message("user", "old", T0 - timedelta(days=40))])
        )
        store.insert_conversation(
            Conversation(
                "s",
                "revived",
                "",
                T0 - timedelta(days=40),
                [Message("user", "old", T0 - timedelta(days=40)), Message("assistant", "new", T0 - timedelta(days=1))],
            )
        )
        store.insert_conversation(Conversation("s", "new", "", T0, [Message("user", "x", T0)]))
    with MemoryStore(tmp_path / "m.db") as store:
        keys = [c.source_id for c in store.conversations(since=T0 - timedelta(days=30))]
        assert keys == ["revived", "new"]
        # A conversation that continues into the window comes whole.
        assert len(store.conversations(since=T0 - timedelta(days=30))[0].messages) == 2


def test_a_conversation_by_its_number(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "m.db") as store, store.transaction():
        for index, title in enumerate(["Dog", "Cat"]):
            message = Message("user", title.lower(), T0 + timedelta(days=index))
            store.insert_conversation(Conversation("test", str(index), title, T0 + timedelta(days=index), [message]))
    with MemoryStore(tmp_path / "m.db") as store:
        cat = next(c for c in store.conversations() if c.title == "Cat")
        found = store.conversation(cat.id or 0)
        assert found is not None and [m.content for m in found.messages] == ["cat"]
        assert store.conversation(999) is None
