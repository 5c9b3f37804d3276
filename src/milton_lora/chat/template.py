"""What a model's chat template does with a conversation: where each message's text lands in the rendered
text, which characters an assistant turn adds (its content and its end-of-turn token), and the tokens that
end an assistant turn.

The conversation is rendered twice: once as it is, once with every message's content replaced by a
numbered placeholder. The placeholder rendering is the template's frame (role headers, BOS, default
system prompts, think blocks, end-of-turn tokens); walking the real text along it tells which characters
belong to which message, whatever the template does between them. This survives what prefix-by-prefix
rendering does not: Qwen3 printing think blocks only after the last user message, Phi-3 ending a whole
conversation differently from its prefixes, Mistral moving the system prompt into the last user turn.

Decisions:
- A template without a system role (it raises on one, or drops it) gets the system text folded into the
  first user turn, as Gemma 3's own template does; `notes` says so, once.
- The end-of-turn marker is the special token the template prints right after an assistant message
  (whitespace between them is trained too); a template that prints none cannot teach a model to stop,
  and is refused with one error naming the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from milton_lora.errors import MiltonError

Message = dict[str, str]
_PLACEHOLDER = "⟦milton {}⟧"
_PLACEHOLDER_PATTERN = re.compile(r"⟦milton (\d+)⟧")
_PROBE = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello there."},
    {"role": "assistant", "content": "Hi."},
    {"role": "user", "content": "Thanks!"},
    {"role": "assistant", "content": "You are welcome."},
]
FOLD_NOTE = "the chat template has no system role: system text is folded into the first user turn"


@dataclass(frozen=True)
class Rendered:
    """A conversation as the model sees it, and the character spans of it that training labels."""

    text: str
    trained: list[tuple[int, int]]
    end_markers: list[str]
    content: list[tuple[int, int]] = field(default_factory=list)  # every message's text: never special tokens


@dataclass
class ChatFormat:
    """How one tokenizer's chat template frames conversations; built by `ChatFormat.of(tokenizer)`."""

    tokenizer: Any
    folds_system: bool = False
    end_of_turn: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    special_ids: frozenset[int] = frozenset()

    @classmethod
    def of(cls, tokenizer: Any) -> ChatFormat:
        """Probe the template once; raises MiltonError naming the model when it cannot be handled."""
        chat = cls(tokenizer)
        chat.folds_system = not chat._shows_system()
        if chat.folds_system:
            chat.notes.append(f"{chat.name}: {FOLD_NOTE}")
        chat.end_of_turn = tuple(sorted(set(chat.render(_PROBE).end_markers)))
        chat.special_ids = frozenset(tokenizer.convert_tokens_to_ids(_special_tokens(tokenizer)))
        return chat

    @property
    def name(self) -> str:
        return str(getattr(self.tokenizer, "name_or_path", "") or "this model")

    def prepare(self, messages: list[Message]) -> list[Message]:
        """The conversation as the template can take it: system text folded in where it has no system role."""
        if not (self.folds_system and messages and messages[0]["role"] == "system"):
            return messages
        system, rest = messages[0]["content"], messages[1:]
        if rest and rest[0]["role"] == "user":
            return [{"role": "user", "content": f"{system}\n\n{rest[0]['content']}"}, *rest[1:]]
        return [{"role": "user", "content": system}, *rest]

    def prompt_text(self, messages: list[Message]) -> str:
        """The text a model continues to answer `messages`: the conversation and the generation prompt."""
        return self._apply(self.prepare(messages), add_generation_prompt=True)

    def render(self, messages: list[Message], add_generation_prompt: bool = False) -> Rendered:
        """The whole conversation's text, where each message's content lies in it, and, per assistant message,
        the span of its content and end-of-turn."""
        messages = self.prepare(messages)
        text = self._apply(messages, add_generation_prompt)
        frames, order = self._frame(messages, add_generation_prompt)
        specials = _special_tokens(self.tokenizer)
        if not text.startswith(frames[0]):
            raise self._error("renders the conversation's start differently from its frame")
        position, rendered = len(frames[0]), Rendered(text, [], [])
        for k, index in enumerate(order):
            following, last = frames[k + 1], k == len(order) - 1
            length = _content_length(text, position, messages[index]["content"], following, last)
            if length is None:
                raise self._error(f"changes the text of message {index + 1} so that its tokens cannot be located")
            end = position + length
            rendered.content.append((position, end))
            if messages[index]["role"] == "assistant":
                gap, marker = self._end_marker(following, specials)
                rendered.trained.append((position, end + gap + len(marker)))
                rendered.end_markers.append(marker)
            position = end + len(following)
        return rendered

    def _frame(self, messages: list[Message], add_generation_prompt: bool) -> tuple[list[str], list[int]]:
        """The template's text between messages, and the order in which it prints them."""
        placeholders = [{**m, "content": _PLACEHOLDER.format(i)} for i, m in enumerate(messages)]
        pieces = _PLACEHOLDER_PATTERN.split(self._apply(placeholders, add_generation_prompt))
        order = [int(i) for i in pieces[1::2]]
        wrong = [i for i, m in enumerate(messages) if order.count(i) > 1 or (m["role"] != "system" and i not in order)]
        if wrong:
            raise self._error(f"does not print each message exactly once (message {wrong[0] + 1})")
        return pieces[0::2], order

    def _end_marker(self, following: str, specials: list[str]) -> tuple[int, str]:
        """(whitespace before it, the special token) that closes an assistant message."""
        stripped = following.lstrip()
        marker = next((s for s in specials if stripped.startswith(s)), None)
        if marker is None:
            raise self._error(
                f"prints no end-of-turn token after an assistant message (it goes on with {following[:24]!r}), "
                "so a model trained on it would never learn to stop"
            )
        return len(following) - len(stripped), marker

    def _shows_system(self) -> bool:
        marker = _PLACEHOLDER.format(0)
        try:
            return marker in self._apply([{"role": "system", "content": marker}, *_PROBE[1:3]])
        except MiltonError:
            return False

    def _apply(self, messages: list[Message], add_generation_prompt: bool = False) -> str:
        try:
            return self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=add_generation_prompt
            )
        except Exception as exc:  # the template's own raise_exception(), or a Jinja error
            raise self._error(f"refuses the conversation ({str(exc).splitlines()[0] if str(exc) else exc!r})") from None

    def _error(self, reason: str) -> MiltonError:
        return MiltonError(f"{self.name}: the chat template {reason}")


def _content_length(text: str, position: int, content: str, following: str, last: bool) -> int | None:
    """How many characters the message's content takes at `position` (templates may trim it)."""
    for variant in dict.fromkeys((content, content.strip(), content.rstrip(), content.lstrip())):
        end = position + len(variant)
        fits = text.startswith(variant, position) and text.startswith(following, end)
        if fits and (not last or end + len(following) == len(text)):
            return len(variant)
    return None


def _special_tokens(tokenizer: Any) -> list[str]:
    """The tokenizer's special tokens, longest first (so `<|end|>` never shadows `<|endoftext|>`)."""
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    tokens = {t.content for t in added.values() if getattr(t, "special", False)} | set(tokenizer.all_special_tokens)
    return sorted((t for t in tokens if t), key=len, reverse=True)


def lacks_bos(tokenizer: Any, ids: list[int]) -> bool:
    """Whether rendered ids miss the BOS the model expects (its tokenizer adds one to plain text, the
    template printed none); one is then prepended, so there is always exactly one."""
    bos = tokenizer.bos_token_id
    if bos is None or (ids and ids[0] == bos):
        return False
    probe = tokenizer("a")["input_ids"]
    return bool(probe) and probe[0] == bos
