"""`milton-lora init [DIR]`: a new MILTON_HOME, from the files shipped in the package alone.

It creates the memory store and copies of everything a person is expected to edit: `training/configs/`
(the three SFT configs, the preference configs `lora_dpo.yaml` and `lora_kto.yaml`, `serve.yaml` with every key
commented out at its default), `training/eval/` (the sanity prompts and benchmarks), and `redact.yaml` (personal
`always:` / `never:` terms, empty).

Decisions:
- A file that exists is never overwritten (not even raced: files are created with a link that fails when
  the name is taken), so `init` can be re-run on a home in use to add what is missing.
- `--base-model DIR` writes that folder into the training configs' `base_model_path`; without it they keep
  the shipped placeholder and the printed next steps say to set it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from milton_lora.config import ServeConfig
from milton_lora.errors import MiltonError
from milton_lora.fileio import atomic_create_text
from milton_lora.memory import MemoryStore
from milton_lora.settings import Settings, shipped

TRAINING_CONFIGS = ("lora_light.yaml", "lora_default.yaml", "lora_heavy.yaml", "lora_dpo.yaml", "lora_kto.yaml")
EVAL_SUITES = ("sanity_prompts.yaml", "benchmarks.yaml")
_BASE_LINE = re.compile(r"^base_model_path:.*$", re.MULTILINE)

REDACT_TEMPLATE = """\
# Personal redaction terms for `milton-lora export`, on top of the built-in detectors.
# always: words and phrases removed everywhere (family names, your address, employer, project names).
# never:  text kept exactly as written, even where a detector fires (a shared office number, say).
# Replace [] with a list, one entry per line:
# always:
#   - Jane Example
#   - 12 Example Street
always: []
never: []
"""


@dataclass
class InitResult:
    home: Path
    created: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)


def init_home(settings: Settings, base_model: Path | None) -> InitResult:
    """Create what is missing of a MILTON_HOME at `settings.home`; existing files stay as they are."""
    if base_model is not None and not (base_model / "config.json").is_file():
        raise MiltonError(f"--base-model {base_model}: no config.json there; point it at a local model folder")
    if settings.home.exists() and not settings.home.is_dir():
        raise MiltonError(f"{settings.home}: exists and is not a folder")
    result = InitResult(settings.home)
    files = {settings.configs_dir / name: _training_config(name, base_model) for name in TRAINING_CONFIGS}
    files.update({settings.eval_dir / name: shipped(name).read_text() for name in EVAL_SUITES})
    files[settings.serve_config_path] = serve_template()
    files[settings.redact_terms_path] = REDACT_TEMPLATE
    for path, text in files.items():
        (result.created if atomic_create_text(path, text) else result.kept).append(path)
    store_existed = settings.memory_db.exists()
    MemoryStore(settings.memory_db).close()
    (result.kept if store_existed else result.created).append(settings.memory_db)
    result.next_steps = next_steps(settings.home, base_model)
    return result


def _training_config(name: str, base_model: Path | None) -> str:
    text = shipped("configs", name).read_text()
    if base_model is None:
        return text
    line = f"base_model_path: {base_model.resolve()}   # your local model folder (config.json, tokenizer, weights)"
    return _BASE_LINE.sub(lambda _: line, text, count=1)


def serve_template() -> str:
    """`serve.yaml` with every key commented out at its default and described."""
    lines = ["# Serving (milton-lora serve, scripts/start_all.sh). Uncomment a key to change its default."]
    for key, info in ServeConfig.model_fields.items():
        default = info.get_default(call_default_factory=True)
        lines.append(
            f"# {yaml.safe_dump({key: default}, default_flow_style=True).strip()[1:-1]}   # {info.description}"
        )
    return "\n".join(lines) + "\n"


def next_steps(home: Path, base_model: Path | None) -> list[str]:
    base = [] if base_model else [
        "milton-lora base fetch smollm2-135m   # or: milton-lora base import FILE.gguf models/base/NAME",
        "# then set base_model_path in training/configs/*.yaml to that folder",
    ]  # fmt: skip
    return [
        f"cd {home}   # or: export MILTON_HOME={home}",
        *base,
        "milton-lora memory import ~/Downloads/chatgpt-export.zip",
        "milton-lora export --days 30",
        "milton-lora train --config lora_default.yaml --dry-run",
        "milton-lora train --config lora_default.yaml",
    ]
