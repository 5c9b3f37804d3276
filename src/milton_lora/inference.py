"""Loading a base model for inference and greedy, batched chat generation that stops at end-of-turn.

Shared by evaluation and the embedded server. Batches are left-padded so every row's next token
lines up at the end; prompts of similar length share a batch. On a peft model, `adapter_names` picks
the adapter of each row (`__base__`: none), so two adapters answer in one batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from milton_lora.chat.prompts import render_prompt, stop_token_ids
from milton_lora.chat.tokenizer import load_tokenizer
from milton_lora.libraries import quiet_libraries


def load_for_inference(base: Path) -> tuple[Any, Any]:
    """(model in eval mode, tokenizer with a non-eos pad token): bf16 on a GPU with bf16, fp32 otherwise."""
    from transformers import AutoModelForCausalLM

    quiet_libraries()
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    if cuda:
        model = model.to("cuda")
    return model.eval(), load_tokenizer(base)


@dataclass(frozen=True)
class Completion:
    """One reply and what it cost: the prompt's tokens as the model saw them, the tokens it generated
    (a stop token included), and why it stopped ("stop" at end-of-turn, "length" at the budget)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


def completion_of(tokenizer: Any, new_tokens: list[int], prompt_tokens: int, stops: list[int]) -> Completion:
    """The reply in `new_tokens` (what generate added after the prompt): up to the first stop token, or cut."""
    cut = next((k for k, t in enumerate(new_tokens) if t in stops), None)
    text = tokenizer.decode(new_tokens[:cut], skip_special_tokens=True).strip()
    generated = len(new_tokens) if cut is None else cut + 1
    return Completion(text, prompt_tokens, generated, "length" if cut is None else "stop")


def generate(model: Any, tokenizer: Any, conversations: list[list[dict[str, str]]], max_new_tokens: int = 256,
             batch_size: int = 8, adapter_names: list[str] | None = None,
             on_batch: Callable[[int], None] | None = None) -> list[str]:  # fmt: skip
    """The assistant's greedy reply to each conversation, in order; `on_batch(n)` after each batch of n."""
    completions = complete(model, tokenizer, conversations, max_new_tokens, batch_size, adapter_names, on_batch)
    return [c.text for c in completions]


@torch.no_grad()
def complete(model: Any, tokenizer: Any, conversations: list[list[dict[str, str]]], max_new_tokens: int = 256,
             batch_size: int = 8, adapter_names: list[str] | None = None,
             on_batch: Callable[[int], None] | None = None) -> list[Completion]:  # fmt: skip
    """The assistant's greedy reply to each conversation, in order, with its token counts. `adapter_names`
    (one per conversation) runs each row through its own adapter in the same batch (peft's mixed batches)."""
    device = next(model.parameters()).device
    stops = stop_token_ids(tokenizer, model.generation_config)
    prompts = [render_prompt(tokenizer, c) for c in conversations]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths share a batch
    replies: list[Completion | None] = [None] * len(prompts)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        width = max(len(prompts[i]) for i in rows)
        input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for r, i in enumerate(rows):
            input_ids[r, width - len(prompts[i]) :] = torch.tensor(prompts[i])
            attention[r, width - len(prompts[i]) :] = 1
        per_row = {"adapter_names": [adapter_names[i] for i in rows]} if adapter_names else {}
        output = model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention.to(device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=stops,
            pad_token_id=tokenizer.pad_token_id,
            **per_row,
        )
        for r, i in enumerate(rows):
            replies[i] = completion_of(tokenizer, output[r, width:].tolist(), len(prompts[i]), stops)
        if on_batch is not None:
            on_batch(len(rows))
    return [reply for reply in replies if reply is not None]
