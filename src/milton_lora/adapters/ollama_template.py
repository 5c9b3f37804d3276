"""A model's own chat template (Jinja, in its tokenizer) translated into an Ollama `TEMPLATE` (Go text/template).

The translation is read off the template itself, not picked from a list: the template is rendered on
probe conversations made of marker strings, and the text around the markers gives the strings that open
and close each turn (split after the end-of-turn token), the generation prompt, the system block and the
default system prompt the template adds when there is none. Before anything is written, those strings are
put back together for other conversations and must reproduce the template's own rendering exactly;
anything else is an error naming the template, so a Modelfile never teaches Ollama a prompt format the
adapter was not trained on (the reason exported models "never stop").

Families this covers (and names in the Modelfile): Llama 3 (header tokens, `<|eot_id|>`, the 3.1 date lines
in the system block), ChatML (Qwen, SmolLM2: `<|im_start|>` / `<|im_end|>`, a default system prompt), Gemma
(`<start_of_turn>` / `<end_of_turn>`, the system prompt folded into the first user turn, or refused).

Decisions:
- The BOS token is left out when the template prints it: llama.cpp and Ollama add it from the GGUF.
- The Go template follows Ollama's own conventions: `.System` holds the system prompt, `.Messages` the turns
  (system messages among them are skipped), the last user turn is followed by the generation prompt, and a
  final assistant turn is left open (continued).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from milton_lora.errors import MiltonError

_SYSTEM, _USER, _ASSISTANT, _USER2 = "SYSTEMzq7", "USERzq1", "ASSISTANTzq1", "USERzq2"
FAMILIES = {"<|start_header_id|>": "Llama 3", "<|im_start|>": "ChatML", "<start_of_turn>": "Gemma"}

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class TurnFormat:
    """A chat template as the literal text around each turn."""

    family: str
    system_style: str  # "block" (its own turn), "first_user" (folded into the first user turn) or "none"
    system_open: str
    system_close: str  # with "first_user": the separator between the system prompt and the user's text
    default_system: str  # rendered before the first turn when there is no system message
    user_open: str
    user_close: str
    assistant_open: str
    assistant_close: str
    generation_prompt: str

    def render(self, messages: Messages) -> str:
        """What the template renders for `messages` (ending with a user turn) plus the generation prompt."""
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        text = self.system_open + system + self.system_close if system and self.system_style == "block" else ""
        text = text or self.default_system
        pending = system if self.system_style == "first_user" else ""
        for message in messages:
            if message["role"] == "user":
                prefix = pending + self.system_close if pending else ""
                text += self.user_open + prefix + message["content"] + self.user_close
                pending = ""
            elif message["role"] == "assistant":
                text += self.assistant_open + message["content"] + self.assistant_close
        return text + self.generation_prompt

    def go_template(self) -> str:
        """The same format as an Ollama TEMPLATE."""
        lines = []
        if self.system_style == "block":
            fallback = f"{{{{ else }}}}{self.default_system}" if self.default_system else ""
            lines.append(
                f"{{{{- if .System }}}}{self.system_open}{{{{ .System }}}}{self.system_close}{fallback}{{{{ end }}}}"
            )
        else:
            lines.append(self.default_system)
        user_prefix = ""
        if self.system_style == "first_user":
            lines.append("{{- $system := .System }}")
            user_prefix = f'{{{{ if $system }}}}{{{{ $system }}}}{self.system_close}{{{{ $system = "" }}}}{{{{ end }}}}'
        lines += [
            "{{- range $i, $_ := .Messages }}",
            "{{- $last := eq (len (slice $.Messages $i)) 1 }}",
            f'{{{{- if eq .Role "user" }}}}{self.user_open}{user_prefix}{{{{ .Content }}}}{self.user_close}'
            f"{{{{ if $last }}}}{self.generation_prompt}{{{{ end }}}}",
            f'{{{{- else if eq .Role "assistant" }}}}{self.assistant_open}{{{{ .Content }}}}'
            f"{{{{ if not $last }}}}{self.assistant_close}{{{{ end }}}}",
            "{{- end }}",
            "{{- end }}",
        ]
        return "\n".join(line for line in lines if line)


def translate(tokenizer: Any, end_of_turn: list[str], source: str) -> TurnFormat:
    """The TurnFormat of `tokenizer`'s chat template, checked to reproduce it; `end_of_turn` are the token
    strings that end a turn (the model's stop tokens)."""
    render = _renderer(tokenizer, source)
    plain = render([_user(_USER), _assistant(_ASSISTANT), _user(_USER2)])
    if plain is None:
        raise MiltonError(f"{source}: the chat template does not render a user/assistant conversation")
    head, after_user = _cut(plain, _USER, source)
    user_to_assistant, after_assistant = _cut(after_user, _ASSISTANT, source)
    assistant_to_user, tail = _cut(after_assistant, _USER2, source)
    user_close, assistant_open = _split_at_end_of_turn(user_to_assistant, end_of_turn, source)
    assistant_close, user_open = _split_at_end_of_turn(assistant_to_user, end_of_turn, source)
    if not head.endswith(user_open) or not tail.startswith(user_close):
        raise _untranslatable(source, "its turns are not wrapped the same way each time")
    system_style, system_open, system_close = _system_part(render, user_open, source)
    turns = TurnFormat(
        family=next((name for marker, name in FAMILIES.items() if marker in plain), "other"),
        system_style=system_style, system_open=system_open, system_close=system_close,
        default_system=head[: len(head) - len(user_open)], user_open=user_open, user_close=user_close,
        assistant_open=assistant_open, assistant_close=assistant_close,
        generation_prompt=tail[len(user_close):],
    )  # fmt: skip
    _check_reproduces(turns, render, source)
    _check_go_safe(turns, source)
    return turns


def _renderer(tokenizer: Any, source: str) -> Any:
    """Render messages with the generation prompt, without the BOS the template prints (None when the
    template refuses the conversation, as Gemma's does for a system message)."""
    from jinja2 import TemplateError

    bos = tokenizer.bos_token if "bos_token" in (tokenizer.chat_template or "") else None

    def render(messages: Messages) -> str | None:
        try:
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except TemplateError:
            return None
        return text[len(bos) :] if bos and text.startswith(bos) else text

    return render


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def _cut(text: str, marker: str, source: str) -> tuple[str, str]:
    before, found, after = text.partition(marker)
    if not found:
        raise _untranslatable(source, "it changes the message text it is given")
    return before, after


def _split_at_end_of_turn(gap: str, end_of_turn: list[str], source: str) -> tuple[str, str]:
    """Text between two turns -> (close of the first, open of the second): the close runs through the first
    end-of-turn token and the line breaks after it."""
    found = [(gap.find(token), token) for token in end_of_turn if token in gap]
    if not found:
        raise _untranslatable(source, f"no end-of-turn token ({', '.join(end_of_turn)}) between turns")
    start, token = min(found)
    end = start + len(token)
    while gap[end : end + 1] == "\n":
        end += 1
    return gap[:end], gap[end:]


def _system_part(render: Any, user_open: str, source: str) -> tuple[str, str, str]:
    """(style, open, close) of the system prompt; with "first_user" the close is the separator."""
    text = render([{"role": "system", "content": _SYSTEM}, _user(_USER)])
    if text is None:
        return "none", "", ""
    before, after_system = _cut(text, _SYSTEM, source)
    between, _ = _cut(after_system, _USER, source)
    if before.endswith(user_open):
        return "first_user", "", between
    if not between.endswith(user_open):
        raise _untranslatable(source, "its system turn is not followed by a user turn")
    return "block", before, between[: len(between) - len(user_open)]


def _check_reproduces(turns: TurnFormat, render: Any, source: str) -> None:
    conversations: list[Messages] = [
        [_user("Hi")],
        [_user("What is on today?"), _assistant("Two meetings."), _user("And tomorrow?")],
        [_user("a"), _assistant("b"), _user("c"), _assistant("d\ne"), _user("f")],
    ]
    if turns.system_style != "none":
        conversations += [[{"role": "system", "content": "Be brief."}, *c] for c in conversations[:2]]
    for messages in conversations:
        expected = render(messages)
        if expected != turns.render(messages):
            raise _untranslatable(source, f"the translation renders {len(messages)} messages differently")


def _check_go_safe(turns: TurnFormat, source: str) -> None:
    pieces = (turns.system_open, turns.system_close, turns.default_system, turns.user_open, turns.user_close,
              turns.assistant_open, turns.assistant_close, turns.generation_prompt)  # fmt: skip
    if any("{{" in piece or '"""' in piece for piece in pieces):
        raise _untranslatable(source, "its literal text contains '{{' or '\"\"\"'")


def _untranslatable(source: str, why: str) -> MiltonError:
    return MiltonError(
        f"{source}: the chat template cannot be translated into an Ollama TEMPLATE ({why}); translated are "
        "templates with role headers and an end-of-turn token: Llama 3, ChatML (Qwen, SmolLM2), Gemma"
    )
