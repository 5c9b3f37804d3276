"""Held-out metrics on assistant tokens only (the training mask): eval loss, perplexity, token accuracy.

Batches are padded and reduced as they go: only per-batch sums are kept, never the logits of the
whole split, so memory is bounded by one batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from milton_lora.chat.masks import IGNORE


@dataclass
class LmMetrics:
    eval_loss: float
    perplexity: float
    token_accuracy: float
    scored_tokens: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def batch_count(examples: list[dict[str, list[int]]], batch_size: int) -> int:
    return math.ceil(len(examples) / batch_size)


@torch.no_grad()
def masked_lm_metrics(model: Any, examples: list[dict[str, list[int]]], pad_id: int, batch_size: int = 8,
                      on_batch: Callable[[int], None] | None = None) -> LmMetrics:  # fmt: skip
    """Token-weighted mean cross-entropy and next-token accuracy over every labelled token; `on_batch(1)`
    after each batch."""
    device = next(model.parameters()).device
    total_loss, total_correct, total_tokens = 0.0, 0, 0
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))  # less padding per batch
    for start in range(0, len(order), batch_size):
        batch = [examples[i] for i in order[start : start + batch_size]]
        input_ids, attention, labels = pad_batch(batch, pad_id, device)
        logits = model(input_ids=input_ids, attention_mask=attention, use_cache=False).logits[:, :-1].float()
        targets = labels[:, 1:]
        mask = targets != IGNORE
        losses = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE, reduction="sum"
        )
        total_loss += losses.item()
        total_correct += int(((logits.argmax(-1) == targets) & mask).sum())
        total_tokens += int(mask.sum())
        del logits
        if on_batch is not None:
            on_batch(1)
    if total_tokens == 0:
        return LmMetrics(math.nan, math.nan, math.nan, 0)
    loss = total_loss / total_tokens
    return LmMetrics(loss, math.exp(min(loss, 700.0)), total_correct / total_tokens, total_tokens)


def pad_batch(batch: list[dict[str, list[int]]], pad_id: int, device: Any) -> tuple[torch.Tensor, ...]:
    """input_ids, attention mask and labels of `batch`, right-padded to its longest example."""
    width = max(len(e["input_ids"]) for e in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    for row, example in enumerate(batch):
        n = len(example["input_ids"])
        input_ids[row, :n] = torch.tensor(example["input_ids"])
        attention[row, :n] = 1
        labels[row, :n] = torch.tensor(example["labels"])
    return input_ids.to(device), attention.to(device), labels.to(device)
