"""The checks the per-kind redaction tests (`test_redact_<kind>.py`) share: a value in a realistic sentence is
redacted whole under its label, or a sentence (or one value in it) comes out untouched."""

from __future__ import annotations

from milton_lora.redact import Redactor

ENGINE = Redactor()


def assert_redacted(text: str, value: str, label: str) -> None:
    """`value` (which occurs once in `text`) lies inside one finding labeled `label`."""
    start = text.index(value)
    end = start + len(value)
    found = ENGINE.find(text)
    assert any(f.label == label and f.start <= start and f.end >= end for f in found), (
        f"{value!r} not redacted as {label} in {text!r}: {[(text[f.start : f.end], f.label) for f in found]}"
    )


def assert_kept(text: str, value: str | None = None) -> None:
    """Nothing in `text` is redacted or, with `value`, no finding touches that value."""
    found = ENGINE.find(text)
    if value is None:
        assert not found, f"{text!r} altered: {[(text[f.start : f.end], f.label) for f in found]}"
        return
    start = text.index(value)
    end = start + len(value)
    touching = [(text[f.start : f.end], f.label) for f in found if f.start < end and f.end > start]
    assert not touching, f"{value!r} altered in {text!r}: {touching}"
