from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from milton_lora.demo.tiny_model import BOS, EOT, SPECIAL_TOKENS, build_tiny_model
from milton_lora.fileio import sha256_file


def test_tiny_model_loads_with_auto_classes_and_generates(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert model.config.model_type == "llama"
    for token in SPECIAL_TOKENS:
        assert tokenizer.convert_tokens_to_ids(token) != tokenizer.unk_token_id
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello Milton"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**prompt, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert out.shape[1] == prompt["input_ids"].shape[1] + 4


def test_chat_template_has_llama31_structure(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = tokenizer.apply_chat_template(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
        ],
        tokenize=False,
    )
    assert text == (
        f"{BOS}<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
        f"Today Date: 26 Jul 2024\n\nBe brief.{EOT}<|start_header_id|>user<|end_header_id|>\n\nHi{EOT}"
        f"<|start_header_id|>assistant<|end_header_id|>\n\nHello!{EOT}"
    )
    # Like Llama 3, plain tokenization prepends BOS: templating then tokenizing naively doubles it.
    assert tokenizer(text)["input_ids"][:2] == [tokenizer.bos_token_id] * 2
    assert tokenizer.pad_token is None


def test_tiny_model_is_deterministic(tmp_path: Path) -> None:
    first = build_tiny_model(tmp_path / "a", seed=3)
    second = build_tiny_model(tmp_path / "b", seed=3)
    other = build_tiny_model(tmp_path / "c", seed=4)
    for name in ("tokenizer.json", "model.safetensors"):
        assert sha256_file(first / name) == sha256_file(second / name)
    assert sha256_file(first / "model.safetensors") != sha256_file(other / "model.safetensors")


def test_tiny_model_cli(cli, tmp_path: Path) -> None:
    result = cli("tiny-model", str(tmp_path / "m"))
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "m" / "config.json").is_file()
    bad = cli("tiny-model", str(tmp_path / "n"), "--size", "huge")
    assert bad.exit_code == 1
    assert "unknown tiny model size 'huge'" in bad.stderr
