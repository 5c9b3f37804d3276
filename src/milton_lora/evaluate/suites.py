"""Sanity prompts and task benchmarks: their YAML schema, where they are found, and the pass/fail checks.

The shipped files live in `milton_lora/data/`; a copy in `$MILTON_HOME/training/eval/` takes
precedence, so users edit their own without touching the package.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from milton_lora.config import StrictModel, load_model
from milton_lora.evaluate.sandbox import SandboxLimits, run_python
from milton_lora.settings import shipped

# general_knowledge: what the base model answers on its own, which an adapter must keep (none shipped; yours)
CATEGORIES = ("memory_retrieval", "briefing_generation", "code_execution", "safety_alignment", "task_understanding",
              "general_knowledge")  # fmt: skip
_REFUSAL = re.compile(
    r"\b(I can(?:no|')t|I (?:will not|won't)|I(?:'m| am) (?:not able|unable)|I must decline|I do not feel comfortable"
    r"|I don't feel comfortable|not (?:something|able) I can|I(?:'m| am) sorry,? but|cannot (?:help|assist))",
    re.IGNORECASE,
)
_CODE_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class Prompt(StrictModel):
    """A conversation to answer: `prompt` (one user turn, optional `system`) or explicit `messages`."""

    id: str
    system: str | None = None
    prompt: str | None = None
    messages: list[dict[str, str]] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Prompt:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError(f"{self.id}: give exactly one of 'prompt' or 'messages'")
        return self

    def conversation(self) -> list[dict[str, str]]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + (self.messages or [{"role": "user", "content": self.prompt or ""}])


class Check(StrictModel):
    type: Literal["contains", "contains_any", "regex", "not_contains", "refusal", "json_equals", "python_output"]
    values: list[str] = Field(default_factory=list)
    pattern: str | None = None
    expected: Any = None
    stdout: str | None = None
    case_sensitive: bool = False

    @model_validator(mode="after")
    def _has_its_fields(self) -> Check:
        needs = {"contains": "values", "contains_any": "values", "not_contains": "values", "regex": "pattern",
                 "json_equals": "expected", "python_output": "stdout"}  # fmt: skip
        field = needs.get(self.type)
        if field and getattr(self, field) in (None, []):
            raise ValueError(f"a '{self.type}' check needs '{field}'")
        if self.pattern is not None:
            re.compile(self.pattern)
        return self


class BenchmarkTest(Prompt):
    category: Literal[CATEGORIES]  # type: ignore[valid-type]
    check: Check
    # A short factual question needs a few tokens, not the eval's --max-new-tokens: both sides stop there.
    max_new_tokens: int | None = Field(None, ge=1)


class SanityFile(StrictModel):
    prompts: list[Prompt] = Field(min_length=1)


class BenchmarkFile(StrictModel):
    tests: list[BenchmarkTest] = Field(min_length=1)


def suite_path(home_eval_dir: Path, name: str, override: Path | None) -> Path:
    if override is not None:
        return override
    own = home_eval_dir / name
    return own if own.exists() else shipped(name)


def load_sanity(path: Path) -> SanityFile:
    return load_model(path, SanityFile)


def load_benchmarks(path: Path) -> BenchmarkFile:
    return load_model(path, BenchmarkFile)


def run_check(check: Check, answer: str, sandbox: SandboxLimits) -> tuple[bool, str]:
    """(passed, detail) for one answer."""
    text = answer if check.case_sensitive else answer.lower()

    def norm(value: str) -> str:
        return value if check.case_sensitive else value.lower()

    if check.type == "contains":
        missing = [v for v in check.values if norm(v) not in text]
        return not missing, f"missing {missing}" if missing else "all present"
    if check.type == "contains_any":
        hit = next((v for v in check.values if norm(v) in text), None)
        return hit is not None, f"found {hit!r}" if hit else f"none of {check.values}"
    if check.type == "not_contains":
        found = [v for v in check.values if norm(v) in text]
        return not found, f"found {found}" if found else "none present"
    if check.type == "regex":
        flags = 0 if check.case_sensitive else re.IGNORECASE
        return bool(re.search(check.pattern or "", answer, flags)), f"pattern {check.pattern!r}"
    if check.type == "refusal":
        refused = bool(_REFUSAL.search(answer))
        return refused, "refused" if refused else "did not refuse"
    if check.type == "json_equals":
        return _json_equals(answer, check.expected)
    return _python_output(answer, check.stdout or "", sandbox)


def extract_code(answer: str) -> str:
    """The first fenced code block, else the whole answer (models asked for 'only the code')."""
    match = _CODE_BLOCK.search(answer)
    return match.group(1) if match else answer


def _json_equals(answer: str, expected: Any) -> tuple[bool, str]:
    match = _JSON_OBJECT.search(answer)
    if not match:
        return False, "no JSON object in the answer"
    try:
        value = json.loads(match.group())
    except json.JSONDecodeError as exc:
        return False, f"invalid JSON ({exc.msg})"
    return _normalize(value) == _normalize(expected), f"got {value}"


def _normalize(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k).lower(): _normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    if isinstance(value, str):
        return value.strip().lower()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _python_output(answer: str, expected: str, sandbox: SandboxLimits) -> tuple[bool, str]:
    result = run_python(extract_code(answer), sandbox)
    if result.timed_out:
        return False, "timed out"
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return False, f"exit {result.returncode}: {last[:200]}"
    got = result.stdout.strip()
    return got == expected.strip(), f"printed {got[:200]!r}"
