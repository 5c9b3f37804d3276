"""Assistant-only masks, one BOS and end-of-turn stop tokens for every common chat template family.

The templates (tests/chat_families.py) are written from the families' documented formats and plugged into
the tiny model's tokenizer; conversations are multi-turn, with and without a system message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chat_families import FAMILIES, Family, family_tokenizer
from milton_lora.chat.masks import IGNORE, tokenize_conversation, tokenize_split
from milton_lora.chat.prompts import render_prompt, stop_token_ids
from milton_lora.chat.template import FOLD_NOTE, ChatFormat
from milton_lora.errors import MiltonError

SYSTEM = {"role": "system", "content": "You are Milton. Be brief."}
TURNS = [
    {"role": "user", "content": "Remind me to water the plants."},
    {"role": "assistant", "content": "Done: plants at 18:00."},
    {"role": "user", "content": "And call mum?"},
    {"role": "assistant", "content": "Added: call mum at 19:00."},
    {"role": "user", "content": "Thanks, that's all."},
    {"role": "assistant", "content": "Have a good evening!"},
]
IDS = [family.name for family in FAMILIES]


def trained_text(family: Family, tokenizer, messages: list[dict[str, str]]) -> str:
    example = tokenize_conversation(tokenizer, messages)
    return tokenizer.decode([t for t, label in zip(example["input_ids"], example["labels"], strict=True)
                             if label != IGNORE])  # fmt: skip


def expected(family: Family, messages: list[dict[str, str]]) -> str:
    """Each answer and its end-of-turn token. A space the template puts before an answer (Llama 2, Mistral) is
    the template's; the tiny tokenizer keeps it a token of its own, so it stays untrained."""
    after = " " if family.space_before_marker else ""
    return "".join(f"{m['content']}{after}{family.end_of_turn}" for m in messages if m["role"] == "assistant")


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
@pytest.mark.parametrize("with_system", [True, False], ids=["system", "no-system"])
def test_exactly_the_assistant_turns_and_their_end_of_turn_are_trained(
    tiny_model_dir: Path, family: Family, with_system: bool
) -> None:
    tokenizer = family_tokenizer(tiny_model_dir, family)
    messages = [SYSTEM, *TURNS] if with_system else TURNS
    assert trained_text(family, tokenizer, messages) == expected(family, messages)
    assert trained_text(family, tokenizer, messages[:3]) == expected(family, messages[:3])


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_one_bos_at_the_start(tiny_model_dir: Path, family: Family) -> None:
    tokenizer = family_tokenizer(tiny_model_dir, family)
    ids = tokenize_conversation(tokenizer, [SYSTEM, *TURNS])["input_ids"]
    prompt = render_prompt(tokenizer, [SYSTEM, *TURNS[:3]])
    if family.name == "granite":  # its BOS is its end-of-text token, which its tokenizer never prepends
        assert ids[0] != tokenizer.bos_token_id and prompt[0] != tokenizer.bos_token_id
        return
    for sequence in (ids, prompt):
        assert sequence[0] == tokenizer.bos_token_id and sequence[1] != tokenizer.bos_token_id
    if family.name != "llama2":  # Llama 2 opens every user turn with <s>, as its format says
        assert ids.count(tokenizer.bos_token_id) == 1


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_generation_stops_on_the_templates_end_of_turn(tiny_model_dir: Path, family: Family) -> None:
    tokenizer = family_tokenizer(tiny_model_dir, family)
    assert ChatFormat.of(tokenizer).end_of_turn == (family.end_of_turn,)
    stops = stop_token_ids(tokenizer)
    assert tokenizer.convert_tokens_to_ids(family.end_of_turn) in stops
    assert tokenizer.eos_token_id in stops


def test_prompt_ends_where_the_trained_answer_starts(tiny_model_dir: Path) -> None:
    """The prompt for turn 2 is the conversation so far plus the generation prompt; what follows it in training
    is the trained answer (Qwen3 aside: it prints a think block there only in the final turn)."""
    for family in (f for f in FAMILIES if f.name not in ("qwen3", "llama2", "mistral-v0.3")):
        tokenizer = family_tokenizer(tiny_model_dir, family)
        chat = ChatFormat.of(tokenizer)
        rendered = chat.render([SYSTEM, *TURNS])
        prompt = chat.prompt_text([SYSTEM, *TURNS[:3]])
        assert rendered.text.startswith(prompt), family.name
        assert rendered.trained[1][0] == len(prompt), family.name


def test_system_text_is_folded_into_the_first_user_turn_and_said_once(tiny_model_dir: Path) -> None:
    gemma = next(f for f in FAMILIES if f.name == "gemma")
    tokenizer = family_tokenizer(tiny_model_dir, gemma)
    split = tokenize_split(tokenizer, [[SYSTEM, *TURNS], [SYSTEM, *TURNS[:2]]], max_length=512)
    assert split.notes == [f"test/gemma: {FOLD_NOTE}"]
    text = ChatFormat.of(tokenizer).render([SYSTEM, *TURNS]).text
    assert f"<start_of_turn>user\n{SYSTEM['content']}\n\n{TURNS[0]['content']}<end_of_turn>" in text
    chatml = family_tokenizer(tiny_model_dir, next(f for f in FAMILIES if f.name == "chatml"))
    assert tokenize_split(chatml, [[SYSTEM, *TURNS]], max_length=512).notes == []


def test_a_template_that_cannot_teach_stopping_is_one_clear_error(tiny_model_dir: Path) -> None:
    alpaca = Family(
        "alpaca",
        "{% for m in messages %}{% if m['role'] == 'user' %}### Instruction:\n{{ m['content'] }}\n\n"
        "{% elif m['role'] == 'assistant' %}### Response:\n{{ m['content'] }}\n\n{% endif %}{% endfor %}",
        "",
        "<|eot_id|>",
    )
    with pytest.raises(MiltonError, match=r"test/alpaca: the chat template prints no end-of-turn token"):
        tokenize_conversation(family_tokenizer(tiny_model_dir, alpaca), TURNS)


def test_a_conversation_the_template_refuses_names_the_model_and_reason(tiny_model_dir: Path) -> None:
    tokenizer = family_tokenizer(tiny_model_dir, next(f for f in FAMILIES if f.name == "mistral-v0.1"))
    with pytest.raises(MiltonError, match=r"test/mistral-v0.1: .*roles must alternate") as error:
        tokenize_conversation(tokenizer, [TURNS[1], *TURNS])
    assert "\n" not in str(error.value)


def test_templates_that_trim_or_reorder_text_still_locate_every_turn(tiny_model_dir: Path) -> None:
    """Padded contents (templates that trim them) and a user turn repeating the assistant's words."""
    llama3 = family_tokenizer(tiny_model_dir, next(f for f in FAMILIES if f.name == "llama3"))
    messages = [{"role": "user", "content": "  Say: Done.  "}, {"role": "assistant", "content": "Done.\n"},
                {"role": "user", "content": "Done."}, {"role": "assistant", "content": "Done."}]  # fmt: skip
    assert trained_text(FAMILIES[1], llama3, messages) == "Done.<|eot_id|>Done.<|eot_id|>"


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_special_tokens_typed_in_a_message_are_text_not_control_tokens(tiny_model_dir: Path, family: Family) -> None:
    """A person who writes `<|im_end|>` (or `</s>`, `<|eot_id|>`, ...) in a message typed text: it must not end
    the turn in training, nor in a prompt the server or the evaluation renders."""
    tokenizer = family_tokenizer(tiny_model_dir, family)
    typed = " ".join(dict.fromkeys((*family.specials, family.bos, family.eos, family.end_of_turn, "<|im_end|>")))
    messages = [
        {"role": "user", "content": f"What do {typed} mean?"},
        {"role": "assistant", "content": f"Done: {typed}, here only text."},
        *TURNS[2:4],
    ]
    plain = [{**m, "content": m["content"].replace(typed, "X")} for m in messages]
    specials = set(tokenizer.convert_tokens_to_ids(list(tokenizer.all_special_tokens)))

    def control(ids: list[int]) -> list[int]:
        return [t for t in ids if t in specials]

    ids = tokenize_conversation(tokenizer, messages)["input_ids"]
    assert control(ids) == control(tokenize_conversation(tokenizer, plain)["input_ids"])
    assert trained_text(family, tokenizer, messages) == expected(family, messages)
    assert typed in tokenizer.decode(ids)
    assert control(render_prompt(tokenizer, messages[:3])) == control(render_prompt(tokenizer, plain[:3]))
