"""A conversation as a generation prompt, and the token ids that end an assistant turn.

Prompts are rendered with the model's chat template (system text folded in where the template has no
system role) and tokenized as training tokenizes them (special tokens only from the template, never from a
message's text), with the BOS training puts there: exactly one. The stop
tokens come from the template itself (the token it prints after an assistant message: `<|eot_id|>`,
`<|im_end|>`, `<end_of_turn>`, `<|end|>`, `</s>`, ...), the tokenizer's eos and the model's generation config.
"""

from __future__ import annotations

from typing import Any

from milton_lora.chat.masks import tokens_of
from milton_lora.chat.template import ChatFormat, lacks_bos


def stop_token_ids(tokenizer: Any, generation_config: Any | None = None) -> list[int]:
    """Every id that ends an assistant turn: the template's end-of-turn tokens, the tokenizer's eos and the
    eos ids of the model's `generation_config` (e.g. Llama 3's `<|end_of_text|>` beside `<|eot_id|>`)."""
    ids = {int(i) for i in tokenizer.convert_tokens_to_ids(list(ChatFormat.of(tokenizer).end_of_turn))}
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    configured = getattr(generation_config, "eos_token_id", None)
    if configured is not None:
        ids.update([configured] if isinstance(configured, int) else configured)
    return sorted(ids)


def render_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """Token ids of `messages` followed by the template's generation prompt (the assistant's turn opens)."""
    chat = ChatFormat.of(tokenizer)
    ids, _ = tokens_of(chat, chat.render(messages, add_generation_prompt=True))
    return [tokenizer.bos_token_id, *ids] if lacks_bos(tokenizer, ids) else ids
