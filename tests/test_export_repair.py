"""Export makes every imported conversation trainable on every chat template: it repairs (and names) what
would break alternation, strips reasoning traces, and renders attachments as the export options say."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from chat_families import FAMILIES, family_tokenizer
from export_shapes import Node, chatgpt_conversation, chatgpt_zip, claude_conversation, claude_zip
from milton_lora.chat.masks import tokenize_split
from milton_lora.export import ExportOptions, export_training_data
from milton_lora.memory import MemoryStore
from milton_lora.memory.imports import import_file
from milton_lora.settings import Settings

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
PHOTO = {
    "content_type": "image_asset_pointer",
    "asset_pointer": "file-service://file-8Xq2",
    "size_bytes": 183204,
    "width": 1024,
    "height": 768,
    "fovea": None,
    "metadata": None,
}


def exported(directory: Path) -> list[list[dict[str, str]]]:
    lines = (directory / "train.jsonl").read_text().splitlines() + (directory / "test.jsonl").read_text().splitlines()
    return [json.loads(line)["messages"] for line in lines]


def attachment_only_start(tmp_path: Path) -> Path:
    """A ChatGPT export whose first user message held only a photo: imported, it starts with the answer."""
    receipt = chatgpt_conversation(
        "c-receipt",
        "Receipt",
        [
            Node("user", [PHOTO], content_type="multimodal_text", metadata={"attachments": [{"name": "r.jpg"}]}),
            Node("assistant", ["This receipt totals 42 euros."]),
            Node("user", ["Split it three ways"]),
            Node("assistant", ["14 euros each."]),
        ],
    )
    only_photo = chatgpt_conversation(
        "c-photo", "Photo", [Node("user", [PHOTO], content_type="multimodal_text"), Node("assistant", ["A cat."])]
    )
    normal = chatgpt_conversation("c-hi", "Hi", [Node("user", ["Hi"]), Node("assistant", ["Hello!"])])
    return chatgpt_zip(tmp_path / "export.zip", [receipt, only_photo, normal])


def test_a_conversation_starting_with_the_assistant_is_repaired_named_and_trains_on_every_template(
    settings: Settings, tmp_path: Path, tiny_model_dir: Path
) -> None:
    with MemoryStore(settings.memory_db) as store:
        import_file(store, attachment_only_start(tmp_path))
    out = tmp_path / "out"
    summary = export_training_data(settings.memory_db, out, None, now=NOW)
    assert summary.repaired == ["chatgpt:c-receipt ('Receipt'): dropped an assistant turn before the first user turn"]
    assert summary.skipped == ["chatgpt:c-photo ('Photo'): no assistant turn"]
    metadata = json.loads((out / "metadata.json").read_text())
    assert (metadata["repaired"], metadata["skipped"]) == (summary.repaired, summary.skipped)
    conversations = exported(out)
    assert sorted(c[0]["content"] for c in conversations) == ["Hi", "Split it three ways"]
    for family in FAMILIES:  # Llama 2, Mistral and Gemma refuse a conversation that starts with the assistant
        split = tokenize_split(family_tokenizer(tiny_model_dir, family), conversations, max_length=256)
        assert len(split.examples) == 2, family.name


def test_the_cli_export_names_repaired_conversations(cli, settings: Settings, tmp_path: Path) -> None:
    assert cli("memory", "import", str(attachment_only_start(tmp_path))).exit_code == 0
    result = cli("export")
    assert result.exit_code == 0, result.stderr
    assert "repaired (each named below)" in result.stdout
    assert "repaired chatgpt:c-receipt ('Receipt')" in result.stderr
    assert "skipped chatgpt:c-photo ('Photo'): no assistant turn" in result.stderr


def reasoning_history(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "local-model-log.jsonl"
    rows = [
        {
            "id": "r1",
            "messages": [
                {"role": "user", "content": "Is 91 prime?"},
                {"role": "assistant", "content": "<think>\n91 = 7 * 13.\n</think>\n\nNo: 91 = 7 × 13."},
            ],
        },
        {
            "id": "r2",
            "messages": [
                {"role": "user", "content": "And 97?"},
                {"role": "assistant", "content": "Trial division up to 9 finds nothing.</think>\n\nYes, 97 is prime."},
            ],
        },
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with MemoryStore(settings.memory_db) as store:
        import_file(store, path)


def test_reasoning_traces_are_stripped_by_default_and_kept_on_request(settings: Settings, tmp_path: Path) -> None:
    reasoning_history(settings, tmp_path)
    summary = export_training_data(settings.memory_db, tmp_path / "a", None, now=NOW)
    answers = sorted(c[1]["content"] for c in exported(tmp_path / "a"))
    assert answers == ["No: 91 = 7 × 13.", "Yes, 97 is prime."]
    assert summary.reasoning_stripped == 2
    kept = ExportOptions(keep_reasoning=True)
    export_training_data(settings.memory_db, tmp_path / "b", None, now=NOW, options=kept)
    assert any("<think>" in c[1]["content"] for c in exported(tmp_path / "b"))


@pytest.mark.parametrize(("yaml", "shown"), [("", True), ("include_attachments: false\n", False)])
def test_attachments_are_in_the_user_turn_unless_export_yaml_says_no(
    cli, settings: Settings, tmp_path: Path, yaml: str, shown: bool
) -> None:
    notes = {"file_name": "notes.txt", "file_size": 20, "file_type": "txt", "extracted_content": "Buy milk."}
    conversation = claude_conversation(
        "u-1", "List", [("human", "What is on it?"), ("assistant", "Milk.")], {0: [notes]}
    )
    assert cli("memory", "import", str(claude_zip(tmp_path / "c.zip", [conversation]))).exit_code == 0
    settings.export_config_path.write_text(yaml)
    assert cli("export").exit_code == 0
    (user, _), *_ = [c for c in exported(settings.export_dir)]
    expected = '<attachment name="notes.txt">\nBuy milk.\n</attachment>\n\nWhat is on it?'
    assert user["content"] == (expected if shown else "What is on it?")
