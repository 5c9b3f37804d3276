"""Where things live. The only place that reads the environment (`MILTON_HOME`, `MILTON_SERVE_API_KEY`,
the variable `--judge-api-key-env` names) and the only place that joins path names onto the home:
every file and folder of the `MILTON_HOME` layout is a property here.

Everything else receives a `Settings` (or plain paths taken from it) as an argument.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

# The files an export writes (`training/data/exported/`): the two splits and what the export recorded.
EXPORT_TRAIN = "train.jsonl"
EXPORT_TEST = "test.jsonl"
EXPORT_METADATA = "metadata.json"
# The preference signals of the same window and split (`preferences.py` owns the lines' shape).
EXPORT_PREFERENCES = "preferences.jsonl"
# The files of one adapter folder (`adapters/<run_id>/`), as peft writes them and vLLM reads them.
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_METADATA = "metadata.json"
# A run stopped for a non-finite loss leaves its health record in `runs/<run_id>/` instead of an adapter.
RUN_HEALTH = "health.json"
# The conversations a run trained on (the export's train split plus any replay), kept so that a later
# `--from-production` run can replay them after the export has been overwritten.
RUN_TRAIN_DATA = "train.jsonl"
# Which conversation each line of that file is (`lineage.LineMap`: keyed hashes), rewritten with it by a forget.
RUN_TRAIN_LINEAGE = "train_lineage.json"
# Where a `--from-production` run started (production's adapter and the replay drawn), written when it
# starts, so that `train --resume` records the same `init_from` and `replay` in the adapter's metadata.json.
RUN_INIT_FROM = "init_from.json"
# The preferences a `method: dpo | kto` run trained on (the export's train split), and which conversation each
# line came from (`lineage.LineMap`), kept so that `train --resume` trains on the same ones.
RUN_TRAIN_PREFERENCES = "preferences.jsonl"
RUN_PREFERENCE_LINEAGE = "preferences_lineage.json"
# The general questions an SFT run mixed in, answered by the base model, and how they were made
# (`train/general_replay.py`); not the person's, so no lineage.
RUN_GENERAL_REPLAY = "general_replay.json"


@dataclass(frozen=True)
class Settings:
    """Root of one Milton installation; every relative path of the documented workflow lives under `home`."""

    home: Path

    @classmethod
    def from_env(cls, home: Path | str | None = None) -> Settings:
        """Build settings from an explicit home, else `$MILTON_HOME`, else the current directory."""
        chosen = home if home is not None else os.environ.get("MILTON_HOME") or Path.cwd()
        return cls(home=Path(chosen).expanduser().resolve())

    @property
    def memory_db(self) -> Path:
        return self.home / "memory" / "milton.db"

    @property
    def export_dir(self) -> Path:
        return self.home / "training" / "data" / "exported"

    @property
    def export_train_path(self) -> Path:
        return self.export_dir / EXPORT_TRAIN

    @property
    def export_test_path(self) -> Path:
        return self.export_dir / EXPORT_TEST

    @property
    def base_models_dir(self) -> Path:
        """Base models kept inside the home (the demo's tiny model)."""
        return self.home / "models" / "base"

    @property
    def samples_dir(self) -> Path:
        """`milton-lora demo`: the sample chat exports it imports into its throwaway home."""
        return self.home / "samples"

    @property
    def redact_terms_path(self) -> Path:
        """Personal redaction terms (`always:` / `never:`) for the export and the `redact` filter."""
        return self.home / "redact.yaml"

    @property
    def export_config_path(self) -> Path:
        """What the export writes of each conversation (attachments, reasoning); optional."""
        return self.home / "export.yaml"

    @property
    def configs_dir(self) -> Path:
        return self.home / "training" / "configs"

    @property
    def eval_dir(self) -> Path:
        """Own copies of the evaluation suites (`sanity_prompts.yaml`, `benchmarks.yaml`)."""
        return self.home / "training" / "eval"

    @property
    def gate_path(self) -> Path:
        """Optional thresholds of the promotion gate and of the evaluation's diagnosis."""
        return self.eval_dir / "gate.yaml"

    @property
    def adapters_dir(self) -> Path:
        return self.home / "adapters"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def planned_general_replay(self) -> Path:
        """The general replay the last training plan generated (`train --dry-run` too), for the run that follows
        with the same inputs (`train/general_replay.py`)."""
        return self.home / "training" / "general_replay_planned.json"

    @property
    def exports_dir(self) -> Path:
        """Adapters exported for other engines: `exports/<run_id>/` (GGUF, Ollama folder, merged model)."""
        return self.home / "exports"

    @property
    def cycles_dir(self) -> Path:
        """`milton-lora cycle`: one `<cycle_id>.json` log per cycle, the lock and who holds it."""
        return self.runs_dir / "cycles"

    @property
    def cycle_lock_path(self) -> Path:
        return self.cycles_dir / "cycle.lock"

    @property
    def cycle_holder_path(self) -> Path:
        """Which process holds the cycle lock, since when (read when a second cycle is refused)."""
        return self.cycles_dir / "cycle.holder.json"

    @property
    def registry_path(self) -> Path:
        return self.home / "models" / "registry.json"

    @property
    def serve_config_path(self) -> Path:
        return self.configs_dir / "serve.yaml"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def server_log(self) -> Path:
        return self.logs_dir / "server.log"

    @property
    def vllm_log(self) -> Path:
        return self.logs_dir / "vllm.log"

    @property
    def server_dir(self) -> Path:
        """The background server's pid and state files."""
        return self.runs_dir / "server"

    @property
    def serve_state_path(self) -> Path:
        return self.server_dir / "state.json"

    @property
    def server_pid_path(self) -> Path:
        return self.server_dir / "server.pid"

    def written_folders(self) -> list[Path]:
        """Every folder commands write files into (atomically, through temp files): where a killed command's
        leftovers are looked for."""
        fixed = [self.memory_db.parent, self.export_dir, self.configs_dir, self.eval_dir, self.adapters_dir,
                 self.runs_dir, self.exports_dir, self.cycles_dir, self.registry_path.parent,
                 self.server_dir]  # fmt: skip
        per_run = [child for parent in (self.runs_dir, self.exports_dir) if parent.is_dir()
                   for child in parent.iterdir() if child.is_dir() and not child.name.startswith(".")]  # fmt: skip
        return fixed + per_run

    def resolve(self, path: Path | str) -> Path:
        """A path from a config or flag: absolute stays, relative is taken under `home`."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.home / candidate


def shipped(*parts: str) -> Path:
    """A file shipped inside the package (`milton_lora/data/`: training configs, evaluation suites)."""
    return Path(str(files("milton_lora").joinpath("data", *parts)))


def checkout_scripts_dir() -> Path | None:
    """The documented `scripts/` of the source checkout this package runs from (`<checkout>/src/milton_lora`
    next to `pyproject.toml`), or None when the package is installed (a wheel has no scripts/)."""
    package = Path(__file__).resolve().parent
    checkout = package.parent.parent
    scripts = checkout / "scripts"
    in_checkout = package.parent.name == "src" and (checkout / "pyproject.toml").is_file() and scripts.is_dir()
    return scripts if in_checkout else None


def default_cache_dir() -> Path:
    """Where downloaded packages and converted base models are kept: `$MILTON_CACHE_DIR`, else
    `$XDG_CACHE_HOME/milton-lora`, else `~/.cache/milton-lora`."""
    explicit = os.environ.get("MILTON_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "milton-lora"


def current_user() -> str | None:
    """Who runs this command (the OS user), recorded on every registry transition."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def env_api_key() -> str | None:
    """The serving API key, read here at the edge so the server receives it explicitly."""
    return os.environ.get("MILTON_SERVE_API_KEY") or None


def env_value(name: str) -> str | None:
    """A variable the person named on the command line (e.g. `--judge-api-key-env`); None when unset or empty."""
    return os.environ.get(name) or None
