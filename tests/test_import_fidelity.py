"""Imports keep every conversation as the person had it (issue 29) and hold on hostile files (issue 28):
realistic ChatGPT and claude.ai exports, zips of each, and files crafted to break the reader."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from export_shapes import Node, chatgpt_conversation, chatgpt_zip, claude_conversation, claude_zip
from milton_lora.errors import MiltonError
from milton_lora.memory import MemoryStore
from milton_lora.memory.imports import import_file, reading


def turns(db: Path) -> dict[str, list[tuple[str, str]]]:
    with MemoryStore(db) as store:
        return {c.source_id: [(m.role, m.content) for m in c.messages] for c in store.conversations()}


def greeting(conversation_id: str = "c-1", answer: str = "Hi!") -> dict:
    return chatgpt_conversation(conversation_id, "Hello", [Node("user", ["Hello"]), Node("assistant", [answer])])


def test_a_claude_zip_is_recognised_by_its_content(tmp_path: Path) -> None:
    archive = claude_zip(
        tmp_path / "data-2025-03-01.zip",
        [claude_conversation("u-1", "Plans", [("human", "Hi"), ("assistant", "Hello")])],
    )
    with MemoryStore(tmp_path / "m.db") as store:
        report = import_file(store, archive)
    assert (report.format, report.imported) == ("claude", 1)
    assert turns(tmp_path / "m.db") == {"u-1": [("user", "Hi"), ("assistant", "Hello")]}


def test_a_continued_answer_joins_exactly_where_it_was_cut(tmp_path: Path) -> None:
    nodes = [
        Node("user", ["Write the parser"]),
        Node("assistant", ["Here it is:\n\n```python\ndef par"], finish="max_tokens"),
        Node("assistant", ["se(text):\n    return text.split()\n```\nDone"], finish="max_tokens"),
        Node("assistant", [" and tested."]),
        Node("user", ["Thanks"]),
        Node("assistant", ["You're welcome."]),
    ]
    archive = chatgpt_zip(tmp_path / "export.zip", [chatgpt_conversation("c-1", "Parser", nodes)])
    db = tmp_path / "m.db"
    with MemoryStore(db) as store:
        report = import_file(store, archive)
    assert report.counts.continuations_joined == 2
    answer = turns(db)["c-1"][1][1]
    assert answer == "Here it is:\n\n```python\ndef parse(text):\n    return text.split()\n```\nDone and tested."


def test_answer_pieces_around_a_tool_call_still_join_with_a_blank_line(tmp_path: Path) -> None:
    nodes = [
        Node("user", ["Weather in Oslo?"]),
        Node("assistant", ["Let me look."]),
        Node("assistant", ['search("Oslo weather")'], content_type="code", recipient="web"),
        Node("tool", ["sunny, 4°C"]),
        Node("assistant", ["It is sunny."]),
    ]
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([chatgpt_conversation("c-1", "Oslo", nodes)]))
    with MemoryStore(tmp_path / "m.db") as store:
        assert import_file(store, path).counts.tool_turns_stripped == 2
    assert turns(tmp_path / "m.db")["c-1"][1] == ("assistant", "Let me look.\n\nIt is sunny.")


@pytest.mark.parametrize(
    ("family", "answer", "seen"),
    [
        (
            "cite",
            "Oslo has 700,000 people \ue200cite\ue202turn0search1\ue202turn0news3\ue201.",
            "Oslo has 700,000 people.",
        ),
        ("filecite", "Your notes say so.\ue200filecite\ue202turn2file0\ue201", "Your notes say so."),
        ("navlist", "News:\ue200navlist\ue202Latest\ue202turn0news1,turn0news2\ue201", "News:"),
        ("image_group", '\ue200image_group\ue202{"query":["fjord"]}\ue201Fjords are deep.', "Fjords are deep."),
        (
            "entity",
            'Ask \ue200entity\ue202["people","Ada Lovelace","mathematician"]\ue201 about it.',
            "Ask Ada Lovelace about it.",
        ),
        ("highlight", "She said \ue203it works\ue204\ue206 yesterday.", "She said it works yesterday."),
        ("bracket", "The file says 42【5†source】. See also【11:0†notes.pdf】.", "The file says 42. See also."),
        ("bare tokens", "Prices rose citeturn0search1turn0news3 last year.", "Prices rose last year."),
        ("bare filecite", "As written filecite turn2file0 here.", "As written here."),
    ],
)
def test_citation_and_tool_markers_are_stripped(tmp_path: Path, family: str, answer: str, seen: str) -> None:
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([greeting(answer=answer)]))
    with MemoryStore(tmp_path / "m.db") as store:
        assert import_file(store, path).counts.citation_markers_stripped >= 1, family
    assert turns(tmp_path / "m.db")["c-1"][1] == ("assistant", seen)


def test_reimport_of_a_regenerated_answer_replaces_the_old_one(tmp_path: Path) -> None:
    first = [Node("user", ["Name a colour"]), Node("assistant", ["Red."], id="a1")]
    regenerated = [*first, Node("assistant", ["Blue."], id="a2", parent="n1")]
    older, newer = tmp_path / "old.zip", tmp_path / "new.zip"
    chatgpt_zip(older, [chatgpt_conversation("c-1", "Colours", first)])
    chatgpt_zip(newer, [chatgpt_conversation("c-1", "Colours", regenerated, current="a2")])
    db = tmp_path / "m.db"
    with MemoryStore(db) as store:
        import_file(store, older)
        report = import_file(store, newer)
        assert (report.updated, report.unchanged) == (1, 0)
        assert turns(db)["c-1"][1] == ("assistant", "Blue.")
        # Importing the older export again keeps the newer answer, and says so.
        again = import_file(store, older)
        assert (again.updated, again.stored_is_newer) == (0, 1)
        assert import_file(store, newer).unchanged == 1
    assert turns(db)["c-1"][1] == ("assistant", "Blue.")


def test_a_single_conversation_object_is_imported(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(greeting(), indent=2))
    claude = tmp_path / "claude-one.json"
    claude.write_text(json.dumps(claude_conversation("u-1", "One", [("human", "Hi"), ("assistant", "Hey")])))
    with MemoryStore(tmp_path / "m.db") as store:
        assert (import_file(store, path).format, import_file(store, claude).format) == ("chatgpt", "claude")
    assert set(turns(tmp_path / "m.db")) == {"c-1", "u-1"}


def test_bad_conversations_are_named_and_the_good_ones_kept(tmp_path: Path) -> None:
    broken = greeting("c-2")
    broken["mapping"]["n2"]["message"]["author"]["role"] = "wizard"
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([greeting("c-1"), broken, "not a conversation", greeting("c-3")]))
    with MemoryStore(tmp_path / "m.db") as store:
        report = import_file(store, path)
    assert report.imported == 2
    assert report.problems == [
        "conversation 2 ('Hello'): message 'n2' has unknown role 'wizard'",
        "conversation 3: expected an object, found str",
    ]


def test_claude_attachment_text_is_kept_as_an_attachment(tmp_path: Path) -> None:
    notes = {"file_name": "notes.txt", "file_size": 31, "file_type": "txt", "extracted_content": "Buy milk.\nCall Sam."}
    photo = {"file_name": "photo.jpg", "file_size": 9000, "file_type": "image/jpeg", "extracted_content": ""}
    conversation = claude_conversation(
        "u-1",
        "Notes",
        [("human", "What is on my list?"), ("assistant", "Milk and a call to Sam.")],
        {0: [notes, photo]},
    )
    db = tmp_path / "m.db"
    with MemoryStore(db) as store:
        report = import_file(store, claude_zip(tmp_path / "c.zip", [conversation]))
        assert report.counts.attachments_kept == 1
        (stored,) = store.conversations()
    user = stored.messages[0]
    assert user.content == "What is on my list?"
    assert [(a.name, a.content) for a in user.attachments] == [("notes.txt", "Buy milk.\nCall Sam.")]
    assert user.text(include_attachments=True) == (
        '<attachment name="notes.txt">\nBuy milk.\nCall Sam.\n</attachment>\n\nWhat is on my list?'
    )
    assert user.text(include_attachments=False) == "What is on my list?"


# --- hostile and unlucky files (issue 28) -------------------------------------------------------


def test_duplicate_ids_with_different_content_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([greeting("c-1"), greeting("c-1"), greeting("c-1", answer="Other.")]))
    with MemoryStore(tmp_path / "m.db") as store:
        report = import_file(store, path)
    assert (report.imported, report.repeated_in_file) == (1, 1)
    assert report.problems == [
        "conversation 3 ('Hello'): id 'c-1' is already in the file (conversation 1) with different content; "
        "the first was kept"
    ]


def test_a_bom_jsonl_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    line = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(line).encode() + b"\r\n")
    with MemoryStore(tmp_path / "m.db") as store:
        assert import_file(store, path).imported == 1


def test_a_non_utf8_conversations_json_in_a_zip_is_a_clear_error(tmp_path: Path) -> None:
    archive = tmp_path / "export.zip"
    text = json.dumps([greeting(answer="Café")], ensure_ascii=False)
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("conversations.json", text.encode("latin-1"))
    with MemoryStore(tmp_path / "m.db") as store, pytest.raises(MiltonError) as caught:
        import_file(store, archive, "chatgpt")
    assert "export.zip:conversations.json: not UTF-8 text (byte" in str(caught.value)
    assert "save it as UTF-8" in str(caught.value)


def test_100k_deep_json_is_a_bad_record_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "conversations.json"
    deep = "[" * 100_000 + "]" * 100_000
    path.write_text(f'[{json.dumps(greeting())}, {{"mapping": {deep}}}]')
    jsonl = tmp_path / "deep.jsonl"
    jsonl.write_text('{"messages": ' + deep + "}\n")
    with MemoryStore(tmp_path / "m.db") as store:
        report = import_file(store, path, "chatgpt")
        assert report.imported == 1
        assert report.problems == [f"conversation 2: nested more than {reading.MAX_DEPTH} levels deep"]
        with pytest.raises(MiltonError, match="line 1: nested too deeply"):
            import_file(store, jsonl, "openai")


def test_a_record_of_too_many_values_is_a_bad_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "MAX_RECORD_VALUES", 1000)
    path = tmp_path / "conversations.json"
    flood = greeting("c-2")
    flood["moderation_results"] = [{}] * 2000
    path.write_text(json.dumps([greeting("c-1"), flood, greeting("c-3")]))
    with MemoryStore(tmp_path / "m.db") as store:
        report = import_file(store, path)
    assert (report.imported, report.problems) == (2, ["conversation 2: holds more than 1,000 values"])


def test_a_record_over_the_size_limit_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same path as a 1.5 GB string, at a limit the test can reach quickly.
    monkeypatch.setattr(reading, "MAX_RECORD_BYTES", 2**20)
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([greeting("c-1"), greeting("c-2", answer="x" * 10 * 2**20)]))
    db = tmp_path / "m.db"
    with MemoryStore(db) as store, pytest.raises(MiltonError, match=r"a record near byte \d+ is over 1 MB"):
        import_file(store, path)
    assert turns(db) == {}
    long_line = tmp_path / "long.jsonl"
    short = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    long_line.write_text(
        json.dumps(short) + "\n" + json.dumps({"messages": [{"role": "user", "content": "y" * 3 * 2**20}]}) + "\n"
    )
    with MemoryStore(db) as store:
        report = import_file(store, long_line)
    assert (report.imported, report.problems) == (1, ["line 2: longer than 1 MB"])


def test_a_zip_that_expands_too_far_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("conversations.json", "[" + " " * 20_000_000 + "]")
    with MemoryStore(tmp_path / "m.db") as store, pytest.raises(MiltonError, match=r"expands \d+x \(limit 100x\)"):
        import_file(store, archive)


def test_cli_prints_what_was_kept_repaired_stripped_and_skipped(cli, tmp_path: Path) -> None:
    nodes = [
        Node("user", ["Hi"]),
        Node("assistant", ["Hel"], finish="max_tokens"),
        Node("assistant", ["lo 【1†source】"]),
    ]
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([chatgpt_conversation("c-1", "Hi", nodes), {"title": "Broken", "mapping": {}}]))
    result = cli("memory", "import", str(path))
    assert result.exit_code == 0, result.stderr
    for row in (
        "kept: new",
        "repaired: continued answers joined",
        "stripped: citation markers",
        "skipped: bad records",
    ):
        assert row in result.stdout
    assert "conversation 2 ('Broken'): missing 'conversation_id'" in result.stderr.replace("\n", " ")
    bad = cli("memory", "import", str(path), "--strict")
    assert bad.exit_code == 1 and "Traceback" not in bad.stderr
