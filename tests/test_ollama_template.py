"""Ollama TEMPLATEs translated from real chat templates (Llama 3, ChatML, Gemma): checked against the Jinja
rendering, and, where Go is installed, executed by Go's text/template the way Ollama executes them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from milton_lora.adapters.ollama import modelfile
from milton_lora.adapters.ollama_template import translate
from milton_lora.demo.tiny_model import LLAMA31_STYLE_TEMPLATE
from milton_lora.errors import MiltonError

SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
QWEN25 = (
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}"
    "{%- else %}{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\n' }}{%- endif %}{%- for message in messages %}{%- if message.role != 'system' or not loop.first %}"
    "{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"
)
GEMMA3 = (
    "{{ bos_token }}{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}{%- if message['role'] == 'assistant' -%}{%- set role = 'model' -%}"
    "{%- else -%}{%- set role = message['role'] -%}{%- endif -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)
GEMMA2 = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}{% endif %}"
    "{% endfor %}"
)

# template, bos token, end-of-turn tokens, family, system style
CASES = {
    "llama3": (LLAMA31_STYLE_TEMPLATE, "<|begin_of_text|>", ["<|eot_id|>", "<|end_of_text|>"], "Llama 3", "block"),
    "smollm2": (SMOLLM2, "<|im_start|>", ["<|im_end|>"], "ChatML", "block"),
    "qwen2.5": (QWEN25, "<|endoftext|>", ["<|im_end|>", "<|endoftext|>"], "ChatML", "block"),
    "gemma3": (GEMMA3, "<bos>", ["<end_of_turn>", "<eos>"], "Gemma", "first_user"),
    "gemma2": (GEMMA2, "<bos>", ["<end_of_turn>", "<eos>"], "Gemma", "none"),
}
CONVERSATIONS = [
    [{"role": "user", "content": "What's on today?"}],
    [{"role": "system", "content": "You are Milton.\nBe brief."}, {"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "Remind me at 5"}, {"role": "assistant", "content": "Done: 17:00."},
     {"role": "user", "content": "And the plants?"}],
    [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
     {"role": "user", "content": "c\n\nd"}],
]  # fmt: skip


@pytest.fixture
def tokenizer(tiny_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _with_template(tokenizer: Any, name: str) -> Any:
    template, bos, *_ = CASES[name]
    tokenizer.chat_template = template
    tokenizer.bos_token = bos
    return tokenizer


def _hf_rendering(tokenizer: Any, messages: list[dict[str, str]]) -> str | None:
    from jinja2 import TemplateError

    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except TemplateError:
        return None
    bos = tokenizer.bos_token
    return text[len(bos) :] if "bos_token" in tokenizer.chat_template and text.startswith(bos) else text


@pytest.mark.parametrize("name", list(CASES))
def test_template_families_are_recognised_and_reproduce_the_jinja_rendering(tokenizer: Any, name: str) -> None:
    _, _, stops, family, style = CASES[name]
    turns = translate(_with_template(tokenizer, name), stops, name)
    assert (turns.family, turns.system_style) == (family, style)
    for messages in CONVERSATIONS:
        expected = _hf_rendering(tokenizer, messages)
        if expected is not None:
            assert turns.render(messages) == expected


def test_smollm2_and_llama3_keep_their_default_system_block(tokenizer: Any) -> None:
    smol = translate(_with_template(tokenizer, "smollm2"), ["<|im_end|>"], "smollm2")
    assert (
        "named SmolLM" in smol.default_system
        and "{{ else }}<|im_start|>system\nYou are a helpful" in smol.go_template()
    )
    llama = translate(_with_template(tokenizer, "llama3"), ["<|eot_id|>"], "llama3")
    assert (
        llama.default_system.startswith("<|start_header_id|>system") and "<|begin_of_text|>" not in llama.go_template()
    )


def test_a_template_without_end_of_turn_tokens_is_a_clear_error(tokenizer: Any) -> None:
    with pytest.raises(MiltonError, match=r"mistral: the chat template cannot be translated .* Llama 3, ChatML"):
        translate(_mistral(tokenizer), ["</s>"], "mistral")


def _mistral(tokenizer: Any) -> Any:
    tokenizer.chat_template = MISTRAL
    tokenizer.bos_token, tokenizer.eos_token = "<s>", "</s>"
    return tokenizer


@pytest.mark.parametrize("name", list(CASES))
def test_modelfile_has_from_adapter_template_stops_and_system(tokenizer: Any, name: str) -> None:
    _, _, stops, family, style = CASES[name]
    turns = translate(_with_template(tokenizer, name), stops, name)
    system = None if style == "none" else "You are Milton."
    text = modelfile("/models/base.gguf", "run-f16.gguf", turns, stops, system, "about")
    lines = text.splitlines()
    assert lines[3:5] == ["FROM /models/base.gguf", "ADAPTER ./run-f16.gguf"]
    assert text.count('TEMPLATE """') == 1 and f'TEMPLATE """{turns.go_template()}"""' in text
    assert [line for line in lines if line.startswith("PARAMETER stop")] == [
        f"PARAMETER stop {json.dumps(s)}" for s in stops
    ]
    assert (lines[-1] == 'SYSTEM """You are Milton."""') == (system is not None)
    assert f"{family} chat template" in text
    if style == "none":
        with pytest.raises(MiltonError, match="no system role"):
            modelfile("x", "a.gguf", turns, stops, "Be brief.", "about")


GO_RUNNER = """package main

import (
	"encoding/json"
	"os"
	"strings"
	"text/template"
)

type Message struct {
	Role    string
	Content string
}

// As Ollama's template.Execute does for templates that use .Messages: system messages stay in Messages
// and are also joined into .System.
func main() {
	raw, _ := os.ReadFile(os.Args[1])
	data, _ := os.ReadFile(os.Args[2])
	var messages []*Message
	if err := json.Unmarshal(data, &messages); err != nil {
		panic(err)
	}
	var system []string
	for _, m := range messages {
		if m.Role == "system" {
			system = append(system, m.Content)
		}
	}
	tmpl := template.Must(template.New("").Option("missingkey=zero").Parse(string(raw)))
	values := map[string]any{"System": strings.Join(system, "\\n\\n"), "Messages": messages, "Response": ""}
	if err := tmpl.Execute(os.Stdout, values); err != nil {
		panic(err)
	}
}
"""


@pytest.fixture(scope="module")
def go_runner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed (make setup-test installs golang-go): Go's text/template check is skipped")
    folder = tmp_path_factory.mktemp("go")
    (folder / "main.go").write_text(GO_RUNNER)
    env = {"GOCACHE": str(folder / "cache"), "GOPATH": str(folder / "gopath"), "HOME": str(folder),
           "PATH": str(Path(go).parent), "GOFLAGS": "-mod=mod", "GO111MODULE": "off"}  # fmt: skip
    subprocess.run([go, "build", "-o", str(folder / "render"), str(folder / "main.go")], env=env, check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    return folder / "render"


@pytest.mark.parametrize("name", list(CASES))
def test_go_text_template_renders_what_the_model_was_trained_on(tokenizer: Any, go_runner: Path, name: str,
                                                                tmp_path: Path) -> None:  # fmt: skip
    _, _, stops, _, _ = CASES[name]
    turns = translate(_with_template(tokenizer, name), stops, name)
    (tmp_path / "template").write_text(turns.go_template())
    for i, messages in enumerate(CONVERSATIONS):
        expected = _hf_rendering(tokenizer, messages)
        if expected is None:
            continue
        (tmp_path / f"{i}.json").write_text(
            json.dumps([{"Role": m["role"], "Content": m["content"]} for m in messages])
        )
        rendered = subprocess.run([str(go_runner), str(tmp_path / "template"), str(tmp_path / f"{i}.json")],
                                  capture_output=True, text=True, check=True, timeout=60).stdout  # fmt: skip
        assert rendered == expected, f"{name}, conversation {i}"
