"""`memory forget`: the bytes leave the store, a tombstone keeps a re-import out, the export is rewritten
through its lineage; adapters that learned a forgotten conversation are tainted."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from milton_lora.errors import MiltonError
from milton_lora.fileio import sha256_file
from milton_lora.forgetting import taint_adapters
from milton_lora.lineage import Lineage, Seen, keep_lines
from milton_lora.memory import Conversation, MemoryStore, Message
from milton_lora.memory.forget import ForgetQuery, select_conversations
from milton_lora.memory.imports import import_file
from milton_lora.registry import Registry
from milton_lora.settings import Settings

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
SECRET = "the combination of the garden shed is 4417-PLUM"


def chat(source_id: str, text: str, when: datetime = T0, source: str = "openai") -> Conversation:
    turns = [Message("user", text, when), Message("assistant", f"Noted about {source_id}.", when)]
    return Conversation(source, source_id, f"chat {source_id}", when, turns)


def openai_file(path: Path, conversations: dict[str, str]) -> Path:
    lines = [{"id": key, "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]}
             for key, text in conversations.items()]  # fmt: skip
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_forget_leaves_no_bytes_in_the_store_and_a_reimport_does_not_restore(tmp_path: Path) -> None:
    db = tmp_path / "milton.db"
    export = openai_file(tmp_path / "export.jsonl", {"keep": "the weather is mild today", "gone": SECRET})
    with MemoryStore(db) as store:
        import_file(store, export, "openai")
    assert SECRET.encode() in b"".join(p.read_bytes() for p in tmp_path.glob("milton.db*"))
    with MemoryStore(db) as store:
        chosen = select_conversations(store, ForgetQuery(search="GARDEN SHED"))
        assert [c.key for c in chosen] == ["openai:gone"]
        store.delete_forever(chosen, "test", T0)
        assert store.stats()["forgotten"] == 1 and store.stats()["conversations"] == 1
    assert not any(SECRET.encode() in p.read_bytes() for p in tmp_path.glob("milton.db*"))
    assert b"4417-PLUM" not in db.read_bytes()

    with MemoryStore(db) as store:
        again = import_file(store, export, "openai")
        assert (again.forgotten, again.imported) == (1, 0)
        assert store.append_message("openai", "gone", Message("user", SECRET, T0)) is None
        assert [c.key for c in store.conversations()] == ["openai:keep"]
    with MemoryStore(db, include_forgotten=True) as store:
        assert import_file(store, export, "openai").imported == 1
        assert store.stats()["forgotten"] == 0  # brought back on purpose: the tombstone is lifted


def test_the_query_picks_by_id_key_source_and_dates_and_refuses_a_typo(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "m.db") as store, store.transaction():
        first = store.insert_conversation(chat("a", "about bread", T0, source="chatgpt"))
        store.insert_conversation(chat("b", "about cheese", T0 + timedelta(days=2)))
        store.insert_conversation(chat("c", "about BREAD again", T0 + timedelta(days=4)))
    with MemoryStore(tmp_path / "m.db") as store:

        def keys(**query: object) -> list[str]:
            return [c.key for c in select_conversations(store, ForgetQuery(**query))]

        assert keys(ids=(str(first), "openai:b")) == ["chatgpt:a", "openai:b"]
        assert keys(source="openai") == ["openai:b", "openai:c"]
        assert keys(since=T0 + timedelta(days=1), until=T0 + timedelta(days=3)) == ["openai:b"]
        assert keys(search="bread", source="openai") == ["openai:c"]
        with pytest.raises(MiltonError, match="no stored conversation openai:zzz"):
            keys(ids=("openai:zzz",))
        with pytest.raises(MiltonError, match="name what to forget"):
            keys()


def test_forget_asks_on_a_search_and_rewrites_the_export_through_its_lineage(home: Path, cli) -> None:
    settings = Settings.from_env(home)
    texts = {f"k{i}": f"conversation number {i} about topic {i}" for i in range(12)} | {"gone": SECRET}
    assert cli("memory", "import", str(openai_file(home.parent / "e.jsonl", texts))).exit_code == 0
    assert cli("export").exit_code == 0
    before = json.loads((settings.export_dir / "metadata.json").read_text())
    planned = cli("memory", "forget", "--search", "garden shed", "--dry-run")
    assert planned.exit_code == 0 and "openai:gone" in planned.stdout and "Would forget 1" in planned.stdout
    declined = cli("memory", "forget", "--search", "garden shed", stdin="n\n")
    assert declined.exit_code != 0
    assert (
        SECRET in (settings.export_dir / "train.jsonl").read_text() + (settings.export_dir / "test.jsonl").read_text()
    )
    done = cli("memory", "forget", "--search", "garden shed", "--yes")
    assert done.exit_code == 0, done.stderr
    assert f"rewrote {settings.export_dir}" in done.stdout
    after = json.loads((settings.export_dir / "metadata.json").read_text())
    assert after["conversations_exported"] == before["conversations_exported"] - 1
    for split in ("train", "test"):
        path = settings.export_dir / f"{split}.jsonl"
        assert SECRET not in path.read_text()
        assert len(path.read_text().splitlines()) == after[f"{split}_conversations"] == len(after["lineage"][split])
        assert after["files"][path.name] == sha256_file(path)
    assert not any(SECRET in p.read_text() for p in settings.export_dir.glob("*"))
    stats = json.loads(cli("memory", "stats", "--json").stdout)
    assert stats["forgotten"] == 1 and stats["conversations"] == 12


def test_adapters_are_tainted_through_their_own_and_inherited_lineage(settings: Settings) -> None:
    registry = Registry.of(settings)
    forgotten, other = Seen(identity="f" * 64, version="1" * 64), Seen(identity="0" * 64, version="2" * 64)
    lineages = {
        "lora_20261101_000001": Lineage(train=[forgotten, other]),
        "lora_20261101_000002": Lineage(train=[other], parent="lora_20261101_000001", inherited=[forgotten, other]),
        "lora_20261101_000003": Lineage(train=[other], test=[forgotten]),  # evaluated on it only: not learned
    }
    for run_id, lineage in lineages.items():
        folder = settings.adapters_dir / run_id
        folder.mkdir(parents=True)
        (folder / "metadata.json").write_text(json.dumps({"run_id": run_id, "lineage": lineage.model_dump()}))
        (folder / "adapter_model.safetensors").write_bytes(b"weights")
        registry.register(run_id, None, "test")
    assert taint_adapters(registry, {forgotten.identity}, "forgot") == ["lora_20261101_000001", "lora_20261101_000002"]
    assert registry.get("lora_20261101_000002").tainted.conversations == 1
    assert taint_adapters(registry, {forgotten.identity}, "forgot") == []  # already marked
    assert lineages["lora_20261101_000002"].role_of(forgotten.identity) == "inherited from lora_20261101_000001"
    assert lineages["lora_20261101_000003"].role_of(forgotten.identity) == "evaluated"
    with pytest.raises(MiltonError, match="tainted"):
        registry.check_promotable(registry.get("lora_20261101_000001"), force=True, max_lora_rank=64)


def test_keep_lines_needs_a_lineage_that_covers_the_file() -> None:
    a, b = Seen(identity="a", version="1"), Seen(identity="b", version="2")
    assert keep_lines(["x", "y"], [a, b], {"a"}) == (["y"], [b])
    assert keep_lines(["x", "y"], [a], {"a"}) is None


def test_a_json_lines_file_quoting_forgotten_text_loses_those_lines_and_others_are_named(home: Path, cli) -> None:
    assert cli("memory", "import", str(openai_file(home.parent / "e.jsonl", {"gone": SECRET}))).exit_code == 0
    judged = home / "runs" / "lora_20261101_000001" / "judgements.jsonl"
    judged.parent.mkdir(parents=True)
    judged.write_text(json.dumps({"prompt": SECRET, "winner": "adapter"}) + "\n" + json.dumps({"prompt": "x"}) + "\n")
    notes = home / "notes.txt"
    notes.write_text(f"copied by hand: {SECRET}\n")
    done = cli("memory", "forget", "openai:gone")
    assert done.exit_code == 0, done.stderr
    assert judged.read_text() == json.dumps({"prompt": "x"}) + "\n" and f"rewrote {judged}" in done.stdout
    assert f"{notes} still holds forgotten text" in " ".join(done.stderr.split())
