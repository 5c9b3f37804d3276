"""`MILTON_HOME/redact.yaml` → the `Redactor` with the home's own terms: the file's validated model
(`RedactConfig`, errors naming the key like every config) and building the engine from it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import regex
from pydantic import Field, field_validator, model_validator

from milton_lora.config import StrictModel, load_model
from milton_lora.redact.engine import Redactor
from milton_lora.redact.terms import PersonalTerms, Term


class RedactTerm(StrictModel):
    """One `always` entry of `redact.yaml`: a string (`text`) or a regex, and the label that replaces it."""

    text: str | None = Field(None, description="A string, matched case-insensitively as whole words.")
    regex: str | None = Field(None, description="A Python regex, matched as written.")
    label: str = Field("CUSTOM", description="Replaces the match as [LABEL]: capitals, digits and _.")

    @model_validator(mode="after")
    def _one_pattern(self) -> RedactTerm:
        if (self.text is None) == (self.regex is None):
            raise ValueError("give exactly one of 'text' or 'regex'")
        if self.text is not None and not self.text.strip():
            raise ValueError("'text' must not be empty")
        return self

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                if regex.compile(value).match(""):  # the engine that runs it (terms.py)
                    raise ValueError("must not match the empty string")
            except regex.error as exc:
                raise ValueError(f"not a valid regex ({exc})") from None
        return value

    @field_validator("label")
    @classmethod
    def _label_shape(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z][A-Z0-9_]{0,31}", value):
            raise ValueError("must be capitals, digits and _ (like FAMILY or PROJECT_X), starting with a capital")
        return value


class RedactConfig(StrictModel):
    """`MILTON_HOME/redact.yaml`: your own terms for `milton-lora export` and `milton-lora redact`."""

    always: list[RedactTerm] = Field(
        default_factory=list, description="Redacted everywhere: a string, or {text|regex, label}."
    )
    never: list[str] = Field(default_factory=list, description="Kept as written, even where a detector fires.")

    @field_validator("always", mode="before")
    @classmethod
    def _strings_are_text(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"text": item} if isinstance(item, str) else item for item in value]
        return value


def load_redactor(path: Path) -> Redactor:
    """The redaction engine with the terms of `path` (a `redact.yaml`, optional) applied."""
    config = load_model(path, RedactConfig, defaults_if_missing=True)
    always = [
        Term(term.regex, is_regex=True, label=term.label) if term.regex else Term(term.text or "", label=term.label)
        for term in config.always
    ]
    return Redactor(terms=PersonalTerms(always, config.never))
