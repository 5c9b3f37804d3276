"""The two sides of an evaluation on one base model, and their answers.

The adapter under test is loaded as peft adapter `adapter`, the production adapter (when it is the
opponent) as `production`; the base model is the opponent otherwise. Both sides answer every prompt
with the same greedy decoding. Where peft allows it (LoRA without DoRA), they answer in one batched
pass: each prompt appears twice in a batch, once per adapter (`adapter_names`), so both rows share the
padding and the forward passes. Answers are kept per conversation, so no phase generates twice what
another already has (the sanity answers are the judge's too).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from milton_lora.chat.prompts import render_prompt
from milton_lora.inference import generate, load_for_inference

ADAPTER = "adapter"
PRODUCTION = "production"
BASE = "__base__"  # peft's name for "no adapter" in a mixed batch

Conversation = list[dict[str, str]]
Advance = Callable[[float], None]  # pairs done (a pass of one side is half a pair)


@dataclass
class Sides:
    """A peft model holding the adapter (and production, when it is the opponent), its tokenizer, and how
    answers are generated."""

    model: Any
    tokenizer: Any
    opponent: str  # PRODUCTION or BASE
    max_new_tokens: int
    batch_size: int
    mixed_batches: bool
    _answers: dict[str, tuple[str, str]] = field(default_factory=dict)

    @contextmanager
    def using(self, side: str) -> Iterator[None]:
        """Run the model as one side: an adapter by name, or the base (adapters disabled)."""
        if side == BASE:
            with self.model.disable_adapter():
                yield
            return
        self.model.set_adapter(side)
        yield

    def pairs(self, conversations: list[Conversation], advance: Advance,
              max_new_tokens: int | None = None) -> list[tuple[str, str]]:  # fmt: skip
        """(adapter's answer, opponent's answer) per conversation, each at most `max_new_tokens` tokens (None: the
        evaluation's); each conversation is answered once per budget."""
        budget = max_new_tokens or self.max_new_tokens
        keys = [json.dumps([budget, c], sort_keys=True) for c in conversations]
        todo = list(dict.fromkeys(k for k in keys if k not in self._answers))
        advance(len(keys) - len(todo))
        fresh = [json.loads(k)[1] for k in todo]
        if fresh:
            if self.mixed_batches:
                answered = self._mixed(fresh, advance, budget)
            else:
                answered = self._two_passes(fresh, advance, budget)
            self._answers.update(zip(todo, answered, strict=True))
        return [self._answers[k] for k in keys]

    def base_answers(self, conversations: list[Conversation], advance: Advance) -> list[str]:
        """The base model's answers: the opponent's when it is the base, else one more pass without adapters."""
        if self.opponent == BASE:
            return [theirs for _, theirs in self.pairs(conversations, advance)]
        with self.using(BASE):
            return generate(self.model, self.tokenizer, conversations, self.max_new_tokens, self.batch_size,
                            on_batch=advance)  # fmt: skip

    def _mixed(self, conversations: list[Conversation], advance: Advance, budget: int) -> list[tuple[str, str]]:
        rows = [c for c in conversations for _ in (ADAPTER, self.opponent)]
        names = [name for _ in conversations for name in (ADAPTER, self.opponent)]
        # A pair's two rows have the same length, so the length sort keeps them in one batch.
        replies = generate(
            self.model,
            self.tokenizer,
            rows,
            budget,
            2 * self.batch_size,
            adapter_names=names,
            on_batch=lambda n: advance(n / 2),
        )
        return list(zip(replies[0::2], replies[1::2], strict=True))

    def _two_passes(self, conversations: list[Conversation], advance: Advance, budget: int) -> list[tuple[str, str]]:
        answers = {}
        for side in (ADAPTER, self.opponent):
            with self.using(side):
                answers[side] = generate(
                    self.model,
                    self.tokenizer,
                    conversations,
                    budget,
                    self.batch_size,
                    on_batch=lambda n: advance(n / 2),
                )
        return list(zip(answers[ADAPTER], answers[self.opponent], strict=True))

    def fit(self, conversation: Conversation, max_tokens: int) -> Conversation:
        """The conversation with its oldest turns dropped until its prompt and an answer fit in `max_tokens`."""
        head = [m for m in conversation[:1] if m["role"] == "system"]
        turns = conversation[len(head) :]
        budget = max_tokens - self.max_new_tokens
        while len(turns) > 1 and len(render_prompt(self.tokenizer, head + turns)) > budget:
            turns = turns[1:]
            while len(turns) > 1 and turns[0]["role"] != "user":
                turns = turns[1:]
        return head + turns


def load_sides(
    base: Path,
    adapter_dir: Path,
    production_dir: Path | None,
    max_new_tokens: int,
    batch_size: int,
    mixed_batches: bool = True,
) -> Sides:
    """The base model with the adapter, and production when given, loaded as named peft adapters."""
    from peft import PeftModel

    model, tokenizer = load_for_inference(base)
    model = PeftModel.from_pretrained(model, str(adapter_dir), adapter_name=ADAPTER).eval()
    if production_dir is not None:
        model.load_adapter(str(production_dir), adapter_name=PRODUCTION)
    uses_dora = any(getattr(config, "use_dora", False) for config in model.peft_config.values())
    opponent = PRODUCTION if production_dir is not None else BASE
    return Sides(model, tokenizer, opponent, max_new_tokens, batch_size, mixed_batches and not uses_dora)
