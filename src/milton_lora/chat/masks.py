"""Conversations → token ids with labels on assistant tokens only, for any chat template.

`ChatFormat.render` gives the conversation's text and the characters each assistant turn adds (its
content and its end-of-turn token); characters map to tokens through the fast tokenizer's offsets, so
no `{% generation %}` markers are needed. A token is trained when any of its characters is, since the
model has to produce it to say them. The rendered text is tokenized once, without adding special
tokens, so there is exactly one BOS at the start (the template's; added here only when the template has
none and the tokenizer adds one to plain text).

Special tokens come only from the template, never from what a person typed: a literal `<|im_end|>` in a
message would otherwise become a real end of turn. Where a message's text holds one, the stretch of text
between the template's own special tokens around it is tokenized again as plain text (the tokenizer's
`split_special_tokens`), which is how the tokenizer splits that stretch anyway. (A tokenizer that marks
only the very start of the text with `▁`, Metaspace `prepend_scheme: first`, gives that stretch a leading
`▁` it would not have in place: a one-token difference, and still no control token.)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from transformers import PreTrainedTokenizerBase

from milton_lora.chat.template import ChatFormat, Message, Rendered, lacks_bos

IGNORE = -100
DISTILLED = "distilled"  # an example's optional column: 1 where the label is trained towards the base's distribution


@dataclass
class Encoded:
    """One conversation as trained: ids, labels, and each token's characters in `text` ((0, 0): inserted)."""

    text: str
    input_ids: list[int]
    labels: list[int]
    offsets: list[tuple[int, int]]
    truncated: bool = False

    def as_example(self) -> dict[str, list[int]]:
        return {"input_ids": self.input_ids, "labels": self.labels}


@dataclass
class TokenizedSplit:
    examples: list[dict[str, list[int]]]
    dropped_no_labels: int
    truncated: int
    notes: list[str] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return sum(len(e["input_ids"]) for e in self.examples)

    @property
    def labelled_tokens(self) -> int:
        return sum(sum(label != IGNORE for label in e["labels"]) for e in self.examples)


def marked_distilled(split: TokenizedSplit, distilled: bool) -> TokenizedSplit:
    """The split with a DISTILLED column: every labelled token marked (`distilled`) or none."""
    examples = [{**e, DISTILLED: [int(distilled and label != IGNORE) for label in e["labels"]]} for e in split.examples]
    return replace(split, examples=examples)


def joined(first: TokenizedSplit, second: TokenizedSplit) -> TokenizedSplit:
    """One split of both, first's examples first."""
    return TokenizedSplit(first.examples + second.examples, first.dropped_no_labels + second.dropped_no_labels,
                          first.truncated + second.truncated, first.notes)  # fmt: skip


def encode(chat: ChatFormat, messages: list[Message], max_length: int | None = None,
           last_turn_only: bool = False) -> Encoded:  # fmt: skip
    """The conversation as the model sees it, labelled on assistant content and end-of-turn tokens only (with
    `last_turn_only`, on the last assistant turn's: a reply scored given the conversation before it)."""
    tokenizer = chat.tokenizer
    rendered = chat.render(messages)
    input_ids, offsets = tokens_of(chat, rendered)
    if lacks_bos(tokenizer, input_ids):
        input_ids.insert(0, tokenizer.bos_token_id)
        offsets.insert(0, (0, 0))
    trained = rendered.trained[-1:] if last_turn_only else rendered.trained
    labels = [t if _overlaps(o, trained) else IGNORE for t, o in zip(input_ids, offsets, strict=True)]
    cut = len(input_ids) if max_length is None else max_length
    return Encoded(rendered.text, input_ids[:cut], labels[:cut], offsets[:cut], truncated=len(input_ids) > cut)


def tokenize_conversation(
    tokenizer: PreTrainedTokenizerBase, messages: list[Message], max_length: int | None = None
) -> dict[str, list[int]]:
    """input_ids and labels (IGNORE everywhere but assistant content and its end-of-turn token)."""
    return encode(ChatFormat.of(tokenizer), messages, max_length).as_example()


def tokenize_split(
    tokenizer: PreTrainedTokenizerBase, conversations: list[list[Message]], max_length: int
) -> TokenizedSplit:
    chat = ChatFormat.of(tokenizer)
    split = TokenizedSplit([], 0, 0, list(chat.notes))
    for messages in conversations:
        encoded = encode(chat, messages, max_length)
        split.truncated += encoded.truncated
        if all(label == IGNORE for label in encoded.labels):
            split.dropped_no_labels += 1
            continue
        split.examples.append(encoded.as_example())
    return split


def tokens_of(chat: ChatFormat, rendered: Rendered) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids and character offsets of the rendered text, special tokens only where the template put them."""
    tokenizer, specials = chat.tokenizer, chat.special_ids
    encoded = tokenizer(rendered.text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = list(encoded["input_ids"])
    offsets: list[tuple[int, int]] = [tuple(o) for o in encoded["offset_mapping"]]
    typed = [
        i for i, (t, o) in enumerate(zip(ids, offsets, strict=True)) if t in specials and _overlaps(o, rendered.content)
    ]
    for index in reversed(typed):  # from the end, so earlier indices stay valid
        if ids[index] not in specials:  # already retokenized with a later one in the same stretch
            continue
        start = next((i for i in range(index - 1, -1, -1) if ids[i] in specials and i not in typed), -1)
        end = next((i for i in range(index + 1, len(ids)) if ids[i] in specials and i not in typed), len(ids))
        lo = offsets[start][1] if start >= 0 else 0
        hi = offsets[end][0] if end < len(ids) else len(rendered.text)
        plain = tokenizer(
            rendered.text[lo:hi], add_special_tokens=False, split_special_tokens=True, return_offsets_mapping=True
        )
        ids[start + 1 : end] = plain["input_ids"]
        offsets[start + 1 : end] = [(a + lo, b + lo) for a, b in plain["offset_mapping"]]
    return ids, offsets


def _overlaps(offset: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    start, end = offset
    return end > start and any(start < hi and end > lo for lo, hi in spans)
