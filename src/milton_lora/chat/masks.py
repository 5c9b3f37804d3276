"""Conversations → token ids with labels on assistant tokens only, for any chat template.

The mask is found by rendering the template on growing prefixes of the conversation: the text
between "everything before this assistant turn, with the generation prompt" and "everything through
this assistant turn" is what the assistant said, including its end-of-turn token. Characters map to
tokens through the fast tokenizer's offsets, so no `{% generation %}` markers are needed and the
stock Llama 3.1 template works. The rendered text is tokenized once, without adding special tokens,
so there is exactly one BOS (the template's; added here only when the template has none).
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from milton_lora.errors import MiltonError

IGNORE = -100


@dataclass
class TokenizedSplit:
    examples: list[dict[str, list[int]]]
    dropped_no_labels: int
    truncated: int

    @property
    def tokens(self) -> int:
        return sum(len(e["input_ids"]) for e in self.examples)

    @property
    def labelled_tokens(self) -> int:
        return sum(sum(label != IGNORE for label in e["labels"]) for e in self.examples)


def tokenize_conversation(
    tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], max_length: int | None = None
) -> dict[str, list[int]]:
    """input_ids and labels (IGNORE everywhere but assistant content and its end-of-turn token)."""
    text = _render(tokenizer, messages, add_generation_prompt=False)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:index], add_generation_prompt=True)
        through = _render(tokenizer, messages[: index + 1], add_generation_prompt=False)
        if not (text.startswith(through) and through.startswith(before)):
            raise MiltonError("the chat template does not render conversations prefix by prefix; cannot mask turns")
        spans.append((len(before), len(through)))
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    input_ids: list[int] = list(encoded["input_ids"])
    offsets = list(encoded["offset_mapping"])
    bos = tokenizer.bos_token_id
    if bos is not None and _adds_bos(tokenizer) and (not input_ids or input_ids[0] != bos):
        input_ids.insert(0, bos)
        offsets.insert(0, (0, 0))
    labels = [token if _inside(offset, spans) else IGNORE for token, offset in zip(input_ids, offsets, strict=True)]
    if max_length is not None:
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    return {"input_ids": input_ids, "labels": labels}


def tokenize_split(
    tokenizer: PreTrainedTokenizerBase, conversations: list[list[dict[str, str]]], max_length: int
) -> TokenizedSplit:
    examples, dropped, truncated = [], 0, 0
    for messages in conversations:
        full = tokenize_conversation(tokenizer, messages)
        example = {key: value[:max_length] for key, value in full.items()}
        truncated += len(full["input_ids"]) > max_length
        if all(label == IGNORE for label in example["labels"]):
            dropped += 1
            continue
        examples.append(example)
    return TokenizedSplit(examples, dropped, truncated)


def _render(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def _adds_bos(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether the model expects a BOS: its tokenizer adds one to plain text by default."""
    probe = tokenizer("a")["input_ids"]
    return bool(probe) and probe[0] == tokenizer.bos_token_id


def _inside(offset: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    start, end = offset
    return end > start and any(lo <= start < hi for lo, hi in spans)
