"""Preference accuracy on the held-out preferences: does a model prefer what the person preferred?

For every held-out pair (`preferences.jsonl`, split `test`) each side scores the chosen and the rejected reply by
their summed log-likelihood given the prompt (the reply's tokens and its end-of-turn, as training labels them).
Per side:
- `accuracy`: the share of pairs whose chosen reply has the higher log-likelihood, and `mean_margin`, the mean of
  log p(chosen) - log p(rejected) in nats;
- for an adapter, DPO's reward accuracy: its implicit reward of a reply is its log-likelihood ratio to the base
  model's, so `reward_accuracy` is the share of pairs whose chosen reply gained more over the base than the
  rejected one, and `mean_reward_margin` the mean of that gain's difference (DPO's reward margin with beta 1).
  The base has none (its rewards are zero by definition).

Thumbs labels are not scored (they have no second reply to compare with). No held-out pairs: no section.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from milton_lora.chat.masks import IGNORE, encode
from milton_lora.chat.template import ChatFormat
from milton_lora.evaluate.generation import ADAPTER, BASE, PRODUCTION, Sides
from milton_lora.evaluate.metrics import pad_batch
from milton_lora.evaluate.result import Preferences, PreferenceSide
from milton_lora.preferences import PreferencePair

Examples = list[dict[str, list[int]]]


def pair_examples(tokenizer: Any, pairs: list[PreferencePair], max_length: int) -> Examples:
    """Two examples per pair, chosen then rejected: the prompt and the reply, labelled on the reply alone."""
    chat = ChatFormat.of(tokenizer)
    examples = []
    for pair in pairs:
        prompt = [turn.model_dump() for turn in pair.prompt]
        for reply in (pair.chosen, pair.rejected):
            messages = [*prompt, {"role": "assistant", "content": reply}]
            examples.append(encode(chat, messages, max_length, last_turn_only=True).as_example())
    return examples


@torch.no_grad()
def reply_log_likelihoods(model: Any, examples: Examples, pad_id: int, batch_size: int,
                          on_batch: Callable[[int], None] | None = None) -> list[float]:  # fmt: skip
    """Each example's summed log-probability of its labelled tokens, in example order."""
    device = next(model.parameters()).device
    found = [0.0] * len(examples)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))  # less padding per batch
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        input_ids, attention, labels = pad_batch([examples[i] for i in indices], pad_id, device)
        logits = model(input_ids=input_ids, attention_mask=attention, use_cache=False).logits[:, :-1].float()
        targets = labels[:, 1:]
        mask = targets != IGNORE
        picked = torch.log_softmax(logits, dim=-1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        for row, total in zip(indices, (picked * mask).sum(dim=1).tolist(), strict=True):
            found[row] = total
        del logits
        if on_batch is not None:
            on_batch(1)
    return found


def side_scores(margins: list[float], base_margins: list[float] | None) -> PreferenceSide:
    """A side's accuracy and mean margin; with the base's margins, its DPO reward accuracy and margin too."""
    count = len(margins)
    rewards = [ours - base for ours, base in zip(margins, base_margins, strict=True)] if base_margins else None
    return PreferenceSide(
        accuracy=sum(m > 0 for m in margins) / count,
        mean_margin=sum(margins) / count,
        reward_accuracy=sum(r > 0 for r in rewards) / count if rewards is not None else None,
        mean_reward_margin=sum(rewards) / count if rewards is not None else None,
    )


def preference_scores(sides: Sides, path: Path, pairs: list[PreferencePair], max_length: int, batch_size: int,
                      advance: Callable[[int], None]) -> Preferences:  # fmt: skip
    """Every side's preference accuracy on `pairs` (the adapter, the base, and production when loaded)."""
    examples = pair_examples(sides.tokenizer, pairs, max_length)
    margins: dict[str, list[float]] = {}
    for name in [BASE, ADAPTER] + ([PRODUCTION] if sides.opponent == PRODUCTION else []):
        with sides.using(name):
            scores = reply_log_likelihoods(sides.model, examples, sides.tokenizer.pad_token_id, batch_size, advance)
        margins[name] = [chosen - rejected for chosen, rejected in zip(scores[0::2], scores[1::2], strict=True)]
    base = margins[BASE]
    return Preferences(
        file=str(path),
        pairs=len(pairs),
        adapter=side_scores(margins[ADAPTER], base),
        production=side_scores(margins[PRODUCTION], base) if PRODUCTION in margins else None,
        base=side_scores(base, None),
    )
