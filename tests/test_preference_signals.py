"""Preference signals, memory to export: ChatGPT regenerations kept apart from the turns (idempotently), feedback
by `memory feedback`, `preferences.jsonl` with its splits, redaction, counts and lineage, and forgetting it all.
The served side (`POST /v1/feedback`) is proven on the real server in test_serve.py."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from export_shapes import chatgpt_regenerated
from milton_lora.export import split_of
from milton_lora.memory import MemoryStore
from milton_lora.memory.imports import import_file
from milton_lora.memory.signals import MAX_PAIRS_PER_REPLY
from milton_lora.preferences import PreferenceLabel, PreferencePair, read_preferences
from milton_lora.settings import Settings

EMAIL = "jane.doe@example.com"
QUESTION = f"How do I reverse a list in Python? Mail the answer to {EMAIL}"
REVERSE = [
    "Use reversed().",
    "Use reversed(xs) to iterate backwards.",
    "Call xs.reverse() to reverse in place, or take xs[::-1] for a reversed copy.",
]
HAIKUS = [
    "Autumn moon rises over the quiet harbour.",
    "Cold rain on the roof; the kettle starts to sing.",
    "A crow on the wire counts the passing trains.",
    "Morning fog lifts slowly off the rice fields.",
    "Snow on the bamboo bends it toward the river.",
    "Cherry petals drift across the empty schoolyard.",
]


def export_file(path: Path) -> Path:
    """Two chats (one per split): one with two regenerations, a near-identical one and an abandoned
    follow-up; one whose haiku was regenerated five times (over the cap)."""
    by_split = {split_of(f"chatgpt:regen-{n}"): f"regen-{n}" for n in range(8)}
    chats = [
        chatgpt_regenerated(
            by_split["test"],
            "Reversing lists",
            [(QUESTION, REVERSE), ("Thanks!", ["You're welcome!", "you're   Welcome!"])],
            abandoned_follow_up="That does not work on tuples",
        ),
        chatgpt_regenerated(by_split["train"], "Haiku", [("Write me a one-line haiku", HAIKUS)]),
    ]
    path.write_text(json.dumps(chats))
    return path


def test_regenerations_are_kept_apart_idempotently_and_exported_as_pairs(
    tmp_path: Path, cli: Callable, settings: Settings
) -> None:
    path = export_file(tmp_path / "conversations.json")
    assert cli("memory", "import", str(path)).exit_code == 0
    with MemoryStore(settings.memory_db) as store:
        before = store.stats()
        plain = {c.key: c for c in store.conversations()}
        full = {c.key: c for c in store.conversations(with_alternatives=True)}
    assert before["abandoned_replies"] == 2 + 1 + 5
    reversing = next(c for c in plain.values() if c.title == "Reversing lists")
    assert [m.content for m in reversing.messages] == [QUESTION, REVERSE[-1], "Thanks!", "you're   Welcome!"]
    assert all(not m.alternatives for c in plain.values() for m in c.messages)  # only when asked
    assert [a.content for a in full[reversing.key].messages[1].alternatives] == REVERSE[:2]

    with MemoryStore(settings.memory_db) as store:
        again = import_file(store, path)
        assert (again.unchanged, again.updated, again.imported) == (2, 0, 0)
        assert store.stats() == before

    assert cli("export").exit_code == 0
    exported = settings.export_dir
    sft = (exported / "train.jsonl").read_text() + (exported / "test.jsonl").read_text()
    assert "Use reversed()." not in sft and "tuples" not in sft and HAIKUS[0] not in sft  # never SFT data
    preferences = read_preferences(exported / "preferences.jsonl")
    assert all(isinstance(p, PreferencePair) and p.source == "regenerated" for p in preferences)
    on_reverse = [p for p in preferences if isinstance(p, PreferencePair) and p.chosen == REVERSE[-1]]
    assert [p.rejected for p in on_reverse] == ["Use reversed(xs) to iterate backwards.", "Use reversed()."]
    assert {p.split for p in on_reverse} == {"test"}
    assert [t.model_dump() for t in on_reverse[0].prompt] == [
        {"role": "user", "content": "How do I reverse a list in Python? Mail the answer to [EMAIL]"}
    ]
    on_haiku = [p for p in preferences if isinstance(p, PreferencePair) and p.chosen == HAIKUS[-1]]
    assert [p.rejected for p in on_haiku] == HAIKUS[-2:-5:-1] and {p.split for p in on_haiku} == {"train"}
    assert len(preferences) == 2 + MAX_PAIRS_PER_REPLY
    assert EMAIL not in (exported / "preferences.jsonl").read_text()

    metadata = json.loads((exported / "metadata.json").read_text())
    counts = metadata["preferences"]
    assert counts["pairs"] == {"regenerated": 5, "edited": 0} and counts["labels"]["desirable"] == 0
    assert (counts["skipped_near_identical"], counts["skipped_over_cap"]) == (1, 2)
    assert counts["by_split"] == {"train": 3, "test": 2} and counts["redactions"] == {"EMAIL": 2}
    assert len(metadata["lineage"]["preferences"]) == 5 and "preferences.jsonl" in metadata["files"]


def test_feedback_by_hand_becomes_labels_and_edited_pairs_and_forget_removes_it_all(
    tmp_path: Path, cli: Callable, settings: Settings
) -> None:
    assert cli("memory", "import", str(export_file(tmp_path / "conversations.json"))).exit_code == 0
    with MemoryStore(settings.memory_db) as store:
        reversing = next(c for c in store.conversations() if c.title == "Reversing lists")
        haiku = next(c for c in store.conversations() if c.title == "Haiku")
    wanted = tmp_path / "wanted.txt"
    wanted.write_text(f"Take xs[::-1] for a reversed copy; write to {EMAIL} if stuck.\n")
    assert cli("memory", "feedback", str(reversing.id), "--turn", "2", "--rating", "down").exit_code == 0
    assert cli("memory", "feedback", reversing.key, "--turn", "2", "--edited-file", str(wanted)).exit_code == 0
    assert cli("memory", "feedback", str(haiku.id), "--rating", "up").exit_code == 0  # the last reply
    refused = cli("memory", "feedback", str(reversing.id), "--turn", "1", "--rating", "up")
    assert refused.exit_code == 1 and "turn 1" in refused.stderr and "turns 2, 4" in refused.stderr
    assert cli("memory", "feedback", str(haiku.id), "--rating", "sideways").exit_code == 1
    assert cli("memory", "feedback", str(haiku.id)).exit_code == 1

    assert cli("export").exit_code == 0
    preferences = read_preferences(settings.export_dir / "preferences.jsonl")
    edited = [p for p in preferences if isinstance(p, PreferencePair) and p.source == "edited"]
    assert [(p.chosen, p.rejected, p.split) for p in edited] == [
        ("Take xs[::-1] for a reversed copy; write to [EMAIL] if stuck.", REVERSE[-1], "test")
    ]
    labels = {(p.completion, p.desirable, p.split) for p in preferences if isinstance(p, PreferenceLabel)}
    assert labels == {(REVERSE[-1], False, "test"), (HAIKUS[-1], True, "train")}
    counts = json.loads((settings.export_dir / "metadata.json").read_text())["preferences"]
    assert counts["pairs"]["edited"] == 1 and counts["labels"] == {"desirable": 1, "undesirable": 1}

    assert cli("memory", "forget", str(reversing.id)).exit_code == 0
    left = read_preferences(settings.export_dir / "preferences.jsonl")
    assert left and {p.split for p in left} == {"train"}  # the haiku's pairs and label stay
    metadata = json.loads((settings.export_dir / "metadata.json").read_text())
    assert metadata["preferences"]["by_split"] == {"train": len(left), "test": 0}
    assert len(metadata["lineage"]["preferences"]) == len(left)
    with sqlite3.connect(settings.memory_db) as db:
        rows = {t: db.execute(f"SELECT COUNT(*) FROM {t} WHERE conversation_id = ?", (reversing.id,)).fetchone()[0]
                for t in ("alternatives", "feedback", "messages")}  # fmt: skip
    assert rows == {"alternatives": 0, "feedback": 0, "messages": 0}
    stored = b"".join(p.read_bytes() for p in settings.memory_db.parent.glob("milton.db*"))
    assert b"reversed(xs) to iterate" not in stored and b"write to" not in stored


def test_feedback_follows_its_reply_as_the_conversation_grows_or_changes(tmp_path: Path) -> None:
    """A served conversation that grows is replaced in place: the feedback on its unchanged replies stays; a
    re-import that changes a reply drops the feedback given on it (and the regenerations it now has arrive)."""
    from milton_lora.serve.runtime import capture_to_memory, feedback_to_memory

    db = tmp_path / "milton.db"
    capture, feedback = capture_to_memory(db), feedback_to_memory(db)
    opening = [{"role": "user", "content": "Plan my week"}]
    capture(opening, "Sure: Monday gym.", "chatcmpl-1")
    assert feedback("chatcmpl-1", "down", "Monday: rest.") and not feedback("chatcmpl-0", "up", None)
    grown = [*opening, {"role": "assistant", "content": "Sure: Monday gym."}, {"role": "user", "content": "Tue?"}]
    capture(grown, "Tuesday: dentist.", "chatcmpl-2")
    assert feedback("chatcmpl-2", "up", None)
    with MemoryStore(db) as store:
        (conversation,) = store.conversations()
        assert len(conversation.messages) == 4
        given = store.feedback()
        assert {position: (f.rating, f.edited, f.source) for (_, position), f in given.items()} == {
            1: ("down", "Monday: rest.", "served"),
            3: ("up", None, "served"),
        }

    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([chatgpt_regenerated("c1", "Plan", [("Plan my week", ["Gym.", "Rest."])])]))
    with MemoryStore(db) as store:
        import_file(store, path)
        chat = next(c for c in store.conversations() if c.source == "chatgpt")
        store.add_feedback(chat.id, 1, "up", None, "cli", conversation.created_at)
    path.write_text(json.dumps([chatgpt_regenerated("c1", "Plan", [("Plan my week", ["Gym.", "Rest.", "Read."])])]))
    with MemoryStore(db) as store:
        assert import_file(store, path).updated == 1
        (again,) = [c for c in store.conversations(with_alternatives=True) if c.source == "chatgpt"]
        assert again.id == chat.id and [a.content for a in again.messages[1].alternatives] == ["Gym.", "Rest."]
        assert (chat.id, 1) not in store.feedback()  # given on "Rest.", which is no longer the kept reply


def test_review_shows_and_forget_search_finds_what_only_alternatives_and_edits_hold(
    tmp_path: Path, cli: Callable, settings: Settings
) -> None:
    chat = chatgpt_regenerated(
        "regen-secret", "Mailing", [("Who do I write to?", ["Write to ops@example.org.", "Write to the team."])]
    )
    (tmp_path / "conversations.json").write_text(json.dumps([chat]))
    assert cli("memory", "import", str(tmp_path / "conversations.json")).exit_code == 0
    wanted = tmp_path / "wanted.txt"
    wanted.write_text(f"Write to {EMAIL}.\n")
    assert cli("memory", "feedback", "chatgpt:regen-secret", "--edited-file", str(wanted)).exit_code == 0

    review = cli("export", "--review", "--json")
    assert review.exit_code == 0
    items = {(item["role"], item["value"]) for item in json.loads(review.stdout)["items"]}
    assert items == {("assistant, abandoned reply", "ops@example.org"), ("assistant, edited", EMAIL)}
    assert not any(settings.export_dir.glob("*.jsonl"))  # the review writes nothing

    for text in ("OPS@example", "jane.doe"):  # only in the abandoned reply; only in the edit
        found = cli("memory", "forget", "--search", text, "--dry-run")
        assert found.exit_code == 0 and "chatgpt:regen-secret" in found.stdout, text
    assert "chatgpt:regen-secret" not in cli("memory", "forget", "--search", "nowhere", "--dry-run").stdout
