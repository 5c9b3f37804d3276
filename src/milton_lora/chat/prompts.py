"""A conversation as a generation prompt, and the token ids that end an assistant turn.

Prompts are rendered with the model's chat template (which carries the BOS) and tokenized without
special tokens, so there is exactly one BOS.
"""

from __future__ import annotations

from typing import Any

END_OF_TURN_TOKENS = ("<|eot_id|>", "<|end_of_text|>", "<|im_end|>", "<end_of_turn>")


def stop_token_ids(tokenizer: Any, model: Any | None = None) -> list[int]:
    """Every id that ends an assistant turn: the tokenizer's eos, the model's eos ids, known end-of-turn tokens."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if configured is not None:
        ids.update([configured] if isinstance(configured, int) else configured)
    vocab = tokenizer.get_vocab()
    ids.update(vocab[token] for token in END_OF_TURN_TOKENS if token in vocab)
    return sorted(ids)


def render_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """Token ids of `messages` followed by the template's generation prompt (the assistant's turn opens)."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])
