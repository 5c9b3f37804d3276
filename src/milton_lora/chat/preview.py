"""`milton-lora data preview`: conversations as the model will see them in training, cut into trained and
untrained segments, with trained/total token counts.

Segments are built from the same `encode` training uses, so what is shown is what is trained: each token
covers the text from the previous token's end to its own end (an inserted BOS shows as its token string),
and consecutive tokens with the same flag are joined. Joining all segments gives the rendered text as it
is kept after truncation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from milton_lora.chat.conversations import read_conversations
from milton_lora.chat.masks import IGNORE, encode
from milton_lora.chat.template import ChatFormat, Message
from milton_lora.chat.tokenizer import load_tokenizer
from milton_lora.errors import MiltonError


@dataclass
class Segment:
    text: str
    trained: bool

    def as_dict(self) -> dict[str, str | bool]:
        return {"text": self.text, "trained": self.trained}


@dataclass
class Preview:
    segments: list[Segment]
    trained_tokens: int
    total_tokens: int
    truncated: bool


@dataclass
class FilePreview:
    conversations: list[Preview]
    total_conversations: int
    notes: list[str]


def preview_file(base_model: Path, file: Path, count: int, max_length: int | None = None) -> FilePreview:
    """The first `count` conversations of an exported JSONL file, as `base_model` will be trained on them."""
    if count < 1:
        raise MiltonError(f"--n {count}: show at least one conversation")
    if not (base_model / "config.json").exists() and not (base_model / "tokenizer_config.json").exists():
        raise MiltonError(f"{base_model}: not a model folder (no config.json); give --base-model DIR or --config C")
    conversations = read_conversations(file)
    chat = ChatFormat.of(load_tokenizer(base_model))
    shown = [preview_conversation(chat, messages, max_length) for messages in conversations[:count]]
    return FilePreview(shown, len(conversations), list(chat.notes))


def preview_conversation(chat: ChatFormat, messages: list[Message], max_length: int | None = None) -> Preview:
    encoded = encode(chat, messages, max_length)
    segments: list[Segment] = []
    covered = 0
    for token, label, (start, end) in zip(encoded.input_ids, encoded.labels, encoded.offsets, strict=True):
        if end > start:
            piece, covered = encoded.text[covered:end], max(covered, end)
        else:
            piece = chat.tokenizer.convert_ids_to_tokens(token)
        trained = label != IGNORE
        if segments and segments[-1].trained == trained:
            segments[-1].text += piece
        elif piece:
            segments.append(Segment(piece, trained))
    trained_count = sum(label != IGNORE for label in encoded.labels)
    return Preview(segments, trained_count, len(encoded.input_ids), encoded.truncated)
