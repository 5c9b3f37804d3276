"""Where things live. The only place that reads the environment (`MILTON_HOME`, `MILTON_SERVE_API_KEY`).

Everything else receives a `Settings` (or plain paths taken from it) as an argument.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Root of one Milton installation; the seed's relative paths all live under `home`."""

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
    def configs_dir(self) -> Path:
        return self.home / "training" / "configs"

    @property
    def adapters_dir(self) -> Path:
        return self.home / "adapters"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def registry_path(self) -> Path:
        return self.home / "models" / "registry.json"

    @property
    def serve_config_path(self) -> Path:
        return self.home / "training" / "configs" / "serve.yaml"

    @property
    def serve_state_path(self) -> Path:
        return self.home / "runs" / "server" / "state.json"

    def resolve(self, path: Path | str) -> Path:
        """A path from a config or flag: absolute stays, relative is taken under `home`."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.home / candidate


def env_api_key() -> str | None:
    """The serving API key, read here at the edge so the server receives it explicitly."""
    return os.environ.get("MILTON_SERVE_API_KEY") or None
