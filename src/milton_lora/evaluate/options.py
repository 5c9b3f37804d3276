"""`EvalOptions`: how to evaluate, whoever asks. The `eval` and `cycle` commands take the same flags into it,
the plan reads it (as part of an `EvalRequest`), and the cycle log records all of it. Light at import time:
the CLI reads its defaults when it declares the flags.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True, kw_only=True)
class EvalOptions:
    """The gate's threshold, the suites, generation and the judge."""

    pass_threshold: float | None = None  # overrides gate.yaml's min_pass_rate
    benchmarks: Path | None = None
    sanity: Path | None = None
    max_new_tokens: int = 256
    batch_size: int = 8
    judge_url: str | None = None
    judge_model: str | None = None
    judge_api_key_env: str | None = None  # the variable's name; its value is read at the edge, never logged
    judge_prompts: int = 50
    judge_max_tokens: int = 256
    allow_remote_judge: bool = False
    style_prompts: int = 24  # held-out prompts every side answers for the style match (0: not measured)

    def options(self) -> dict[str, Any]:
        """Just the options (also of a subclass), as keyword arguments."""
        return {f.name: getattr(self, f.name) for f in fields(EvalOptions)}

    def as_dict(self) -> dict[str, Any]:
        """The options as JSON values (paths as strings), for logs."""
        return {name: str(value) if isinstance(value, Path) else value for name, value in self.options().items()}
