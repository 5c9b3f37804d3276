import json
import sqlite3
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from milton_lora.demo.samples import DIALOGUES, write_sample_exports
from milton_lora.errors import MiltonError
from milton_lora.memory import MemoryStore
from milton_lora.memory.imports import import_file

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def samples(tmp_path: Path) -> dict[str, Path]:
    return write_sample_exports(tmp_path / "samples", now=NOW)


def stored(db: Path) -> dict[str, list[tuple[str, str]]]:
    with MemoryStore(db) as store:
        return {c.title: [(m.role, m.content) for m in c.messages] for c in store.conversations()}


def test_chatgpt_export_keeps_only_the_visible_current_branch(tmp_path: Path, samples: dict[str, Path]) -> None:
    db = tmp_path / "m.db"
    with MemoryStore(db) as store:
        report = import_file(store, samples["chatgpt"])
    assert report.format == "chatgpt"
    assert (report.imported, report.counts.hidden_turns_stripped, report.counts.tool_turns_stripped) == (8, 8, 2)
    conversations = stored(db)
    expected = {title: turns for title, turns in DIALOGUES[0::3]}
    # Exactly the dialogue, in order: no hidden system node, no regenerated draft, no tool code or output,
    # and the multimodal message flattened to its text.
    assert conversations == {title: [tuple(t) for t in turns] for title, turns in expected.items()}
    assert "An earlier draft answer." not in json.dumps(conversations)


def test_chatgpt_zip_export(tmp_path: Path, samples: dict[str, Path]) -> None:
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.write(samples["chatgpt"], "conversations.json")
        handle.writestr("chat.html", "<html></html>")
    with MemoryStore(tmp_path / "m.db") as store:
        assert import_file(store, archive).imported == 8


def test_claude_and_openai_exports(tmp_path: Path, samples: dict[str, Path]) -> None:
    db = tmp_path / "m.db"
    with MemoryStore(db) as store:
        assert import_file(store, samples["claude"]).format == "claude"
        assert import_file(store, samples["openai"]).format == "openai"
    conversations = stored(db)
    title, turns = DIALOGUES[1]
    assert conversations[title] == [tuple(t) for t in turns]
    title, turns = DIALOGUES[2]
    assert conversations[title][0] == ("system", "You are Milton, a helpful personal assistant.")
    assert conversations[title][1:] == [tuple(t) for t in turns]
    with MemoryStore(db) as store:
        claude = next(c for c in store.conversations() if c.source == "claude")
        assert claude.messages[0].created_at.tzinfo is not None


def test_reimport_adds_nothing_and_a_longer_version_replaces(tmp_path: Path, samples: dict[str, Path]) -> None:
    db = tmp_path / "m.db"
    with MemoryStore(db) as store:
        import_file(store, samples["openai"])
        again = import_file(store, samples["openai"])
        assert (again.imported, again.unchanged) == (0, 8)
        assert store.stats()["conversations"] == 8
    lines = samples["openai"].read_text().splitlines()
    first = json.loads(lines[0])
    first["messages"] += [{"role": "user", "content": "And tomorrow?"}, {"role": "assistant", "content": "Free."}]
    continued = tmp_path / "continued.jsonl"
    continued.write_text(json.dumps(first) + "\n")
    with MemoryStore(db) as store:
        assert import_file(store, continued).updated == 1
        assert store.stats()["messages"] == 24 + 2


def test_openai_jsonl_details(tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    rows = [
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "weather?"}, {"type": "image_url", "image_url": {"url": "x"}}],
                },
                {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
                {"role": "tool", "content": "sunny", "tool_call_id": "1"},
                {"role": "assistant", "content": "It is sunny."},
            ]
        },
        {
            "messages": [
                {"role": "developer", "content": "Be terse."},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hey", "created_at": "2026-01-02T03:04:05Z"},
            ]
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    with MemoryStore(tmp_path / "m.db") as store:
        report = import_file(store, path, now=NOW)
        assert report.counts.tool_turns_stripped == 2
        first, second = store.conversations()
    assert [(m.role, m.content) for m in first.messages] == [("user", "weather?"), ("assistant", "It is sunny.")]
    assert first.messages[0].created_at == NOW  # no timestamp: the import time
    assert second.messages[0].role == "system"
    assert second.messages[2].created_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("fmt", "content", "message"),
    [
        ("openai", '\n{"messages": [oops\n', r"nothing could be imported: 1 bad record\(s\): line 2: invalid JSON"),
        ("openai", '{"text": "no messages"}\n', r"line 1: expected an object with a 'messages' list"),
        (
            "openai",
            '{"messages": [{"role": "wizard", "content": "ok"}]}\n',
            r"line 1: message 1 has unknown role 'wizard'",
        ),
        (
            "chatgpt",
            '[{"title": "A", "conversation_id": "a", "mapping": {}, "current_node": "x"}]',
            r"conversation 1 \('A'\): node 'x' is referenced but missing",
        ),
        (
            "chatgpt",
            '[{"title": "Loop", "conversation_id": "a", "current_node": "x", "mapping": '
            '{"x": {"id": "x", "parent": "y", "message": null}, "y": {"id": "y", "parent": "x"}}}]',
            r"conversation 1 \('Loop'\): message tree has a cycle",
        ),
        (
            "claude",
            '[{"uuid": "u", "name": "Chat", "chat_messages": [{"sender": "robot", "text": "x"}]}]',
            r"conversation 1 \('Chat'\): message 1 has sender 'robot'",
        ),
        ("claude", '"a string"', r"expected a JSON list of conversations or one conversation object"),
        (
            "claude",
            '[{"uuid": "u", ',
            r"conversations\.json: invalid JSON near byte \d+ \(parse error: premature EOF\)",
        ),
    ],
)
def test_files_with_nothing_importable_name_the_place_and_import_nothing(
    tmp_path: Path, fmt: str, content: str, message: str
) -> None:
    path = tmp_path / ("chats.jsonl" if fmt == "openai" else "conversations.json")
    path.write_text(content)
    db = tmp_path / "m.db"
    with MemoryStore(db) as store:
        with pytest.raises(MiltonError, match=message) as caught:
            import_file(store, path, fmt)
        assert str(path) in str(caught.value)
        assert store.stats()["conversations"] == 0


def test_bad_records_are_skipped_and_named_the_rest_imported(tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    good = json.dumps({"messages": [{"role": "user", "content": "ok"}, {"role": "assistant", "content": "ok"}]})
    path.write_text(good + "\n" + good.replace("ok", "fine") + "\n" + '{"messages": 5}\n[1]\n{"messages": [}\n')
    db = tmp_path / "m.db"
    with MemoryStore(db) as store:
        report = import_file(store, path)
        assert (report.records_in_file, report.imported) == (5, 2)
        assert report.problems == [
            "line 3: expected an object with a 'messages' list",
            "line 4: expected an object, found list",
            "line 5: invalid JSON (Expecting value at column 15)",
        ]
        with pytest.raises(MiltonError, match=r"--strict: nothing imported because 3 bad record\(s\): line 3"):
            import_file(store, path, strict=True)
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM conversations").fetchone()[0] == 2


def test_cli_import_stats_and_add(cli, home: Path, samples: dict[str, Path]) -> None:
    for path in samples.values():
        result = cli("memory", "import", str(path))
        assert result.exit_code == 0, result.stderr
    stats = json.loads(cli("memory", "stats", "--json").stdout)
    assert (stats["conversations"], stats["messages"]) == (24, 58)
    assert stats["by_source"] == {"chatgpt": 8, "claude": 8, "openai": 8}
    assert (home / "memory" / "milton.db").is_file()
    assert cli("memory", "add", "--role", "user", "--conversation", "live-1", "Remind me at 5").exit_code == 0
    assert cli("memory", "add", "--role", "assistant", "--conversation", "live-1", stdin="Sure.").exit_code == 0
    assert json.loads(cli("memory", "stats", "--json").stdout)["messages"] == 60
    bad = cli("memory", "add", "--role", "robot", "--conversation", "x", "hi")
    assert bad.exit_code == 1 and "--role 'robot'" in bad.stderr
    unknown = cli("memory", "import", str(home / "nope.json"))
    assert unknown.exit_code == 1 and "Traceback" not in unknown.stderr
