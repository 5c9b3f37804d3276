"""Which preference signals a stored conversation gives: the rules that turn kept-vs-abandoned replies and
feedback into pairs and labels (the export redacts and writes them as `preferences.jsonl`).

Rules (the README's "Preference signals" lists them for users):
- Chosen is the reply on the kept path (what the person last saw, the one they went on from); each
  abandoned alternative of it (a ChatGPT regeneration) is a rejected side, newest first, at most
  `MAX_PAIRS_PER_REPLY` pairs per reply: a long chain of regenerations gives a few pairs, not a flood
  that one prompt would dominate. The rest are counted as capped.
- An edit gives a pair: the edited text chosen over the reply as it was.
- A thumbs up / down gives a label on the reply as it was (`desirable` true / false); a reply both rated
  and edited gives both.
- Near-identical sides give no signal: texts equal once case and whitespace are ignored, or a difflib
  similarity of their words of `NEAR_IDENTICAL` or more (one word changed in forty). They are skipped and
  counted, never written.
- The prompt is the chat up to and including the user turn answered, prepared as the export prepares
  turns; a reply with no user turn before it gives nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from milton_lora.memory.models import Conversation, Feedback, Message

MAX_PAIRS_PER_REPLY = 3
NEAR_IDENTICAL = 0.95
Turn = dict[str, str]  # one chat-template message, {'role': ..., 'content': ...}; the export's turns too
# The export's turn preparation: messages -> the turns a chat template takes.
Prepare = Callable[[list[Message]], list[Turn]]


@dataclass
class Signal:
    """One preference before redaction: a pair (`chosen`, `rejected`) or a label (`chosen` alone, `desirable`)."""

    source: str  # regenerated | edited | feedback
    prompt: list[Turn]
    chosen: str
    rejected: str | None = None
    desirable: bool | None = None


@dataclass
class Harvest:
    signals: list[Signal] = field(default_factory=list)
    near_identical: int = 0
    capped: int = 0


def near_identical(a: str, b: str) -> bool:
    """Whether two replies say the same thing (no preference between them is learnable). Compared word by word:
    difflib over characters is quadratic in the reply's length."""
    first, second = a.casefold().split(), b.casefold().split()
    if first == second:
        return True
    matcher = SequenceMatcher(None, first, second, autojunk=False)
    return matcher.quick_ratio() >= NEAR_IDENTICAL and matcher.ratio() >= NEAR_IDENTICAL


def harvest(conversation: Conversation, feedback: dict[int, Feedback], prepare: Prepare, found: Harvest) -> None:
    """Add to `found` the signals of `conversation` (its replies' alternatives, `feedback` by reply position)."""
    messages = conversation.messages
    for position, message in enumerate(messages):
        judged = feedback.get(position)
        if message.role != "assistant" or not (message.alternatives or judged):
            continue
        prompt = prepare(messages[:position])
        if not prompt or prompt[-1]["role"] != "user":
            continue
        kept = _reply(prepare, messages[:position], message.content, len(prompt))
        if kept is None:
            continue
        pairs = 0
        for alternative in reversed(message.alternatives):
            rejected = _reply(prepare, messages[:position], alternative.content, len(prompt))
            if rejected is None:
                continue
            if near_identical(kept, rejected):
                found.near_identical += 1
            elif pairs >= MAX_PAIRS_PER_REPLY:
                found.capped += 1
            else:
                pairs += 1
                found.signals.append(Signal("regenerated", prompt, kept, rejected))
        if judged is None:
            continue
        edited = judged.edited.strip() if judged.edited else ""
        if edited and near_identical(edited, kept):
            found.near_identical += 1
        elif edited:
            found.signals.append(Signal("edited", prompt, edited, kept))
        if judged.rating is not None:
            found.signals.append(Signal("feedback", prompt, kept, desirable=judged.rating == "up"))


def _reply(prepare: Prepare, before: list[Message], text: str, prompt_turns: int) -> str | None:
    """`text` as the export prepares a reply after `before` (reasoning stripped); None when preparing would not
    leave it a turn of its own after the prompt."""
    when = before[-1].created_at
    turns = prepare([*before, Message("assistant", text, when)])
    return turns[-1]["content"] if len(turns) == prompt_turns + 1 and turns[-1]["role"] == "assistant" else None
