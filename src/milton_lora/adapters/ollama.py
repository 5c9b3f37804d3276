"""The `Modelfile` of an Ollama export: `FROM` the base, `ADAPTER` the GGUF LoRA next to it, the chat
`TEMPLATE` translated from the base's own template, `PARAMETER stop` for every end-of-turn token, and
`SYSTEM` when a system prompt is given. `ollama create milton -f <folder>/Modelfile` builds the model.

Decisions:
- `FROM` is either an Ollama model name (`llama3.1:8b-instruct-fp16`) or a GGUF file (written as an absolute
  path, since the Modelfile may be used from anywhere); it must hold the weights the adapter was trained
  on, which only the person exporting can vouch for, so the Modelfile says so in a comment.
- `ADAPTER` is relative (`./<file>.gguf`): Ollama resolves it next to the Modelfile, so the folder can move.
- A system prompt is refused for a template that has no system role (Gemma 2), rather than dropped.
"""

from __future__ import annotations

import json
from pathlib import Path

from milton_lora.adapters.ollama_template import TurnFormat
from milton_lora.errors import MiltonError

MODELFILE = "Modelfile"


def ollama_from(base: str) -> str:
    """The `FROM` value: a GGUF path made absolute (and checked), or an Ollama model name as given."""
    if base.endswith(".gguf") or Path(base).expanduser().is_file():
        path = Path(base).expanduser().resolve()
        if not path.is_file():
            raise MiltonError(f"--ollama-base {base}: no such GGUF file; give a GGUF path or an Ollama model name")
        return str(path)
    return base


def modelfile(from_: str, adapter_file: str, turns: TurnFormat, stops: list[str], system: str | None,
              about: str) -> str:  # fmt: skip
    """The Modelfile text; `about` says where the adapter and base came from (a comment line)."""
    if system is not None and turns.system_style == "none":
        raise MiltonError("--system: this model's chat template has no system role; leave --system out")
    if system is not None and '"""' in system:
        raise MiltonError('--system: the system prompt may not contain """ (it ends a Modelfile string)')
    lines = [
        f"# {about}",
        "# FROM must be the same weights the adapter was trained on (a GGUF of the base model, or its Ollama name).",
        f"# TEMPLATE: the base model's {turns.family} chat template, translated and checked against it.",
        f"FROM {from_}",
        f"ADAPTER ./{adapter_file}",
        f'TEMPLATE """{turns.go_template()}"""',
        *(f"PARAMETER stop {json.dumps(stop)}" for stop in stops),
    ]
    if system is not None:
        lines.append(f'SYSTEM """{system}"""')
    return "\n".join(lines) + "\n"
