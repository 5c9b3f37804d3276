"""`milton-lora data preview`: conversations rendered as the model sees them, trained segments marked."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from chat_families import FAMILIES, family_tokenizer
from helpers import REPO
from milton_lora.chat.template import FOLD_NOTE
from milton_lora.demo.samples import write_cpu_config

CONVERSATIONS = [
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Walk the dog?"},
     {"role": "assistant", "content": "Biscuit at 19:00."}, {"role": "user", "content": "And Noor?"},
     {"role": "assistant", "content": "Her train is at 21:10."}],
    [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "Sunny, 21 degrees."}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
]  # fmt: skip


def write_jsonl(path: Path) -> Path:
    path.write_text("".join(json.dumps({"messages": c}) + "\n" for c in CONVERSATIONS))
    return path


def test_json_segments_are_the_rendered_text_with_exactly_the_answers_trained(tiny_model_dir: Path, tmp_path: Path,
                                                                              cli) -> None:  # fmt: skip
    data = write_jsonl(tmp_path / "chats.jsonl")
    result = cli("data", "preview", "--base-model", str(tiny_model_dir), "--file", str(data), "--n", "2", "--json")
    assert result.exit_code == 0, result.stderr
    conversations = json.loads(result.stdout)
    assert len(conversations) == 2
    first = conversations[0]
    assert all(set(segment) == {"text", "trained"} for segment in first)
    text = "".join(s["text"] for s in first)
    assert text.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>") and "Be brief." in text
    answers = ["Biscuit at 19:00.<|eot_id|>", "Her train is at 21:10.<|eot_id|>"]
    assert [s["text"] for s in first if s["trained"]] == answers
    assert [s["trained"] for s in first] == [False, True, False, True]


def test_highlighted_view_counts_tokens_and_says_what_the_template_changed(tiny_model_dir: Path, tmp_path: Path,
                                                                           cli) -> None:  # fmt: skip
    gemma = tmp_path / "gemma"
    family_tokenizer(tiny_model_dir, next(f for f in FAMILIES if f.name == "gemma")).save_pretrained(gemma)
    data = write_jsonl(tmp_path / "chats.jsonl")
    result = cli("data", "preview", "--base-model", str(gemma), "--file", str(data))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("tokens trained") == 3 and "in 3 of 3 conversations" in result.stdout
    assert "<start_of_turn>user\nBe brief.\n\nWalk the dog?<end_of_turn>" in result.stdout
    assert FOLD_NOTE in result.stderr and result.stderr.count("warning:") == 1


def test_config_gives_model_file_and_truncation(tiny_model_dir: Path, tmp_path: Path, home: Path, cli) -> None:
    write_jsonl(home / "chats.jsonl")
    shipped = REPO / "training/configs/lora_light.yaml"
    config = write_cpu_config(home / "training/configs/c.yaml", tiny_model_dir, shipped, train_file="chats.jsonl",
                              max_seq_length=40)  # fmt: skip
    assert yaml.safe_load(config.read_text())["max_seq_length"] == 40
    result = cli("data", "preview", "--config", "c.yaml", "--n", "1")
    assert result.exit_code == 0, result.stderr
    assert "of 40 tokens trained, cut at max_seq_length" in result.stdout


def test_bad_invocations_are_one_line_errors(tiny_model_dir: Path, tmp_path: Path, cli) -> None:
    data = write_jsonl(tmp_path / "chats.jsonl")
    for args, expected in (
        ([], "give either --config"),
        (["--base-model", str(tiny_model_dir), "--config", "x.yaml"], "give either --config"),
        (["--base-model", str(tmp_path), "--file", str(data)], "not a model folder"),
        (["--base-model", str(tiny_model_dir), "--file", str(tmp_path / "none.jsonl")], "not found"),
        (["--base-model", str(tiny_model_dir), "--file", str(data), "--n", "0"], "at least one"),
    ):
        result = cli("data", "preview", *args)
        assert result.exit_code == 1 and expected in result.stderr and "Traceback" not in result.stderr, args
