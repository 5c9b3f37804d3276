"""Importing conversation history from elsewhere: ChatGPT and claude.ai data exports (zip or
conversations.json), OpenAI chat JSONL. One module per service says what of it is kept; this one runs an
import.

Decisions (the README's "Conversation memory" lists them for users):
- The format is recognised from the content (the first records' keys), never from the container: a
  claude.ai zip holds a conversations.json just as a ChatGPT one does.
- Records are read and stored one at a time (`reading.py`), so memory stays bounded for any file.
- A bad record (not an object, a missing id, an unknown role, nested too deep, a line that is not JSON)
  is skipped and reported with its place and why; the rest is imported. The import fails (exit 1, and
  nothing is stored) only when nothing could be imported, or, with `strict`, when anything was bad. A
  file that cannot be read on (invalid JSON, a record over the size limit) imports nothing.
- The same id twice in one file: the first is kept; a second with the same content is counted, one with
  different content is reported as a problem (it is not silently lost).
- Re-import compares content (what the person saw: the current branch, attachments; and the abandoned
  alternatives of its replies): an unchanged conversation is left alone; a changed one (continued, or its
  last answer regenerated) replaces the stored copy in place, unless the stored copy is the newer one (a
  later last message): then it is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from milton_lora.errors import MiltonError
from milton_lora.memory.imports import chatgpt, claude, openai
from milton_lora.memory.imports.common import Malformed, ParseCounts
from milton_lora.memory.imports.reading import Record, json_records, jsonl_records, open_export
from milton_lora.memory.models import Conversation
from milton_lora.memory.store import MemoryStore

FORMATS = ("auto", "chatgpt", "claude", "openai")
_PARSERS: dict[str, Callable[[dict[str, Any], datetime, ParseCounts], Conversation]] = {
    "chatgpt": chatgpt.parse,
    "claude": claude.parse,
    "openai": openai.parse,
}
_KEYS = (("mapping", "chatgpt"), ("chat_messages", "claude"), ("messages", "openai"))
_DETECT_RECORDS = 20
_PROBLEMS_SHOWN = 5


@dataclass
class ImportReport:
    path: str
    format: str
    records_in_file: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    stored_is_newer: int = 0
    forgotten: int = 0
    messages_imported: int = 0
    repeated_in_file: int = 0
    counts: ParseCounts = field(default_factory=ParseCounts)
    problems: list[str] = field(default_factory=list)

    @property
    def kept(self) -> int:
        """Conversations of the file that are now in the store as the file has them."""
        return self.imported + self.updated + self.unchanged

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "records_in_file": self.records_in_file,
            "imported": self.imported,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "stored_is_newer": self.stored_is_newer,
            "forgotten": self.forgotten,
            "messages_imported": self.messages_imported,
            **self.counts.as_dict(),
            "repeated_in_file": self.repeated_in_file,
            "bad_records_skipped": len(self.problems),
            "problems": self.problems,
        }


def import_file(
    store: MemoryStore, path: Path, fmt: str = "auto", now: datetime | None = None, strict: bool = False
) -> ImportReport:
    """Read `path` and store its conversations in one transaction; see the module docstring for the rules."""
    if fmt not in FORMATS:
        raise MiltonError(f"unknown format '{fmt}': choose one of {', '.join(FORMATS)}")
    now = now or datetime.now(timezone.utc)
    chosen = detect_format(path) if fmt == "auto" else fmt
    report = ImportReport(path=str(path), format=chosen)
    seen: dict[str, tuple[str, str]] = {}
    with store.transaction(), open_export(path) as stream:
        for record in _records(stream, chosen):
            report.records_in_file += 1
            conversation = _parsed(record, chosen, now, report)
            if conversation is not None and _first_in_file(conversation, record, seen, report):
                _store(store, conversation, report)
        _check(report, path, strict)
    return report


def detect_format(path: Path) -> str:
    """The format of the file's first recognisable records: by their keys, whatever the container."""
    with open_export(path) as stream:
        records = jsonl_records(stream) if stream.peek() == b"{" else json_records(stream)
        for record, _ in zip(records, range(_DETECT_RECORDS), strict=False):
            if record.problem is not None and record.line == 1:
                break  # not JSONL: one (pretty-printed) object
            if kind := _kind(record.value):
                return kind
    with open_export(path) as stream:
        if stream.peek() == b"{" and (kind := _kind(next(json_records(stream)).value)):
            return kind
    raise MiltonError(
        f"{path}: cannot tell the format (expected a ChatGPT or claude.ai export, or OpenAI chat JSONL); "
        "pass --format chatgpt|claude|openai"
    )


def _kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((fmt for key, fmt in _KEYS if key in value), None)
    return None


def _records(stream: Any, fmt: str) -> Iterator[Record]:
    if fmt == "openai" and stream.peek() != b"[":
        return jsonl_records(stream)
    return json_records(stream)


def _parsed(record: Record, fmt: str, now: datetime, report: ImportReport) -> Conversation | None:
    """The record's conversation, or None after counting it (empty) or reporting it (bad)."""
    problem = record.problem
    if problem is None and not isinstance(record.value, dict):
        problem = f"expected an object, found {type(record.value).__name__}"
    if problem is None:
        try:
            conversation = _PARSERS[fmt](record.value, now, report.counts)
        except Malformed as exc:
            problem = str(exc)
        except RecursionError:
            problem = "nested too deeply"
        else:
            if conversation.messages:
                return conversation
            report.counts.empty_conversations_skipped += 1
            return None
    report.problems.append(f"{_label(record)}: {problem}")
    return None


def _label(record: Record) -> str:
    raw = record.value if isinstance(record.value, dict) else {}
    title = next((raw[k] for k in ("title", "name") if isinstance(raw.get(k), str) and raw[k]), None)
    return record.where + (f" ('{title[:60]}')" if title else "")


def _first_in_file(
    conversation: Conversation, record: Record, seen: dict[str, tuple[str, str]], report: ImportReport
) -> bool:
    """Whether this is the first time the file holds this id; a repeat with other content is a problem."""
    fingerprint = conversation.fingerprint()
    first = seen.get(conversation.source_id)
    if first is None:
        seen[conversation.source_id] = (record.where, fingerprint)
        return True
    if first[1] == fingerprint:
        report.repeated_in_file += 1
    else:
        report.problems.append(
            f"{_label(record)}: id '{conversation.source_id[:60]}' is already in the file ({first[0]}) with "
            "different content; the first was kept"
        )
    return False


def _store(store: MemoryStore, conversation: Conversation, report: ImportReport) -> None:
    stored = store.stored(conversation.source, conversation.source_id)
    if stored is None:
        if store.insert_conversation(conversation) is None:
            report.forgotten += 1  # `memory forget` left a tombstone; --include-forgotten brings it back
            return
        report.imported += 1
    elif stored.fingerprint() == conversation.fingerprint():
        report.unchanged += 1
        return
    elif stored.last_message_at > conversation.last_message_at:
        report.stored_is_newer += 1
        return
    else:
        store.replace_conversation(conversation)
        report.updated += 1
    report.messages_imported += len(conversation.messages)


def _check(report: ImportReport, path: Path, strict: bool) -> None:
    """Fail the import (rolling it back) when nothing could be imported, or anything was bad under `strict`."""
    if report.records_in_file == 0:
        raise MiltonError(f"{path}: the file holds no conversations")
    if not report.problems or (report.kept + report.stored_is_newer and not strict):
        return
    shown = "; ".join(report.problems[:_PROBLEMS_SHOWN])
    more = f" (and {len(report.problems) - _PROBLEMS_SHOWN} more)" if len(report.problems) > _PROBLEMS_SHOWN else ""
    why = "--strict: nothing imported because" if strict and report.kept else "nothing could be imported:"
    raise MiltonError(f"{path}: {why} {len(report.problems)} bad record(s): {shown}{more}")
