"""Export a time window of the memory store to redacted `train.jsonl` / `test.jsonl` / `metadata.json`.

Decisions:
- A conversation is in the window when any of its messages is (`created_at >= now - days`, so the
  boundary instant is inside); it is then exported whole, because the earlier turns are the context
  the later ones answer.
- The split is by conversation and stable: sha256 of the conversation key (`source:source_id`) picks
  the side, so a conversation never moves between train and test across exports with other windows.
- Exact duplicates (same roles and contents in the same order, before redaction) are dropped after
  their first occurrence; conversations without an assistant turn are skipped; both are counted.
- An empty window is an error, not an empty export: it would silently replace a good export.
- All three files are written atomically together; a failed export leaves the previous one intact.
- A review (`milton-lora export --review`) runs the same selection and redaction and writes nothing: it
  returns each redaction with its label and the redacted text around it.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from milton_lora import __version__
from milton_lora.errors import MiltonError
from milton_lora.fileio import atomic_write_files, sha256_bytes
from milton_lora.memory import Conversation, MemoryStore
from milton_lora.redact import Redactor, in_context
from milton_lora.settings import EXPORT_METADATA, EXPORT_TEST, EXPORT_TRAIN

TEST_PERCENT = 20


@dataclass
class ExportSummary:
    """Everything `metadata.json` records and `--dry-run` prints."""

    created_at: str
    window_days: int | None
    window_start: str | None
    store: str
    output_dir: str
    conversations_in_window: int
    conversations_exported: int
    messages_exported: int
    train_conversations: int
    test_conversations: int
    skipped_no_assistant: int
    duplicates_dropped: int
    redactions: dict[str, int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    tool_version: str = __version__

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class ReviewItem:
    """One redaction as `--review` shows it: where, its label, the text removed and the redacted text around it."""

    conversation: str
    title: str
    message: int
    role: str
    label: str
    value: str
    before: str
    after: str


@dataclass
class ExportReview:
    conversations: int
    messages: int
    counts: dict[str, int]
    items: list[ReviewItem]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def split_of(conversation_key: str) -> str:
    """`"test"` for about TEST_PERCENT% of keys, `"train"` for the rest; a pure function of the key."""
    bucket = int.from_bytes(hashlib.sha256(conversation_key.encode()).digest()[:8], "big") % 100
    return "test" if bucket < TEST_PERCENT else "train"


def export_training_data(
    store_path: Path,
    output_dir: Path,
    days: int | None,
    now: datetime | None = None,
    dry_run: bool = False,
    redactor: Redactor | None = None,
) -> ExportSummary:
    """Read the window from the store, redact, split, and (unless `dry_run`) write the three files."""
    now = now or datetime.now(timezone.utc)
    in_window, since = _window(store_path, days, now)
    kept, skipped, duplicates = _select(in_window)
    redacted, counts = _redact(kept, redactor or Redactor())
    lines: dict[str, list[str]] = {"train": [], "test": []}
    for conversation, messages in zip(kept, redacted, strict=True):
        lines[split_of(conversation.key)].append(json.dumps({"messages": messages}, ensure_ascii=False))
    names = {"train": EXPORT_TRAIN, "test": EXPORT_TEST}
    payloads = {names[split]: "".join(line + "\n" for line in rows).encode() for split, rows in lines.items()}

    summary = ExportSummary(
        created_at=now.isoformat(),
        window_days=days,
        window_start=since.isoformat() if since else None,
        store=str(store_path),
        output_dir=str(output_dir),
        conversations_in_window=len(in_window),
        conversations_exported=len(kept),
        messages_exported=sum(len(messages) for messages in redacted),
        train_conversations=len(lines["train"]),
        test_conversations=len(lines["test"]),
        skipped_no_assistant=skipped,
        duplicates_dropped=duplicates,
        redactions=dict(sorted(counts.items())),
        files={name: sha256_bytes(data) for name, data in payloads.items()},
    )
    if not dry_run:
        metadata = json.dumps(summary.as_dict(), indent=2).encode() + b"\n"
        files = {output_dir / name: data for name, data in payloads.items()}
        atomic_write_files({**files, output_dir / EXPORT_METADATA: metadata})
    return summary


def review_export(
    store_path: Path, days: int | None, now: datetime | None = None, redactor: Redactor | None = None
) -> ExportReview:
    """What an export of the same window would redact, each redaction in context; writes nothing."""
    in_window, _ = _window(store_path, days, now or datetime.now(timezone.utc))
    kept, _, _ = _select(in_window)
    messages = [
        (conversation, index, message) for conversation in kept for index, message in enumerate(conversation.messages)
    ]
    findings = (redactor or Redactor()).find_many([message.content for _, _, message in messages])
    items: list[ReviewItem] = []
    counts: Counter[str] = Counter()
    for (conversation, index, message), found in zip(messages, findings, strict=True):
        items += [
            ReviewItem(conversation.key, conversation.title, index, message.role, *shown)
            for shown in in_context(message.content, found)
        ]
        counts.update(finding.label for finding in found)
    return ExportReview(len(kept), len(messages), dict(sorted(counts.items())), items)


def _window(store_path: Path, days: int | None, now: datetime) -> tuple[list[Conversation], datetime | None]:
    """The conversations active in the last `days` days (all without `days`), and where the window starts."""
    if days is not None and days <= 0:
        raise MiltonError(f"--days must be a positive number of days, got {days}")
    if not store_path.exists():
        raise MiltonError(f"{store_path}: no memory store yet; import history first with `milton-lora memory import`")
    since = now - timedelta(days=days) if days is not None else None
    with MemoryStore(store_path) as store:
        in_window = store.conversations(since)
    if not in_window:
        window = f"the last {days} days" if days is not None else "the store"
        raise MiltonError(f"{store_path}: no conversations in {window}; widen --days or import more history")
    return in_window, since


def _select(conversations: list[Conversation]) -> tuple[list[Conversation], int, int]:
    kept: list[Conversation] = []
    seen: set[str] = set()
    skipped = duplicates = 0
    for conversation in conversations:
        if not any(m.role == "assistant" for m in conversation.messages):
            skipped += 1
            continue
        fingerprint = sha256_bytes(json.dumps([(m.role, m.content) for m in conversation.messages]).encode())
        if fingerprint in seen:
            duplicates += 1
            continue
        seen.add(fingerprint)
        kept.append(conversation)
    return kept, skipped, duplicates


def _redact(conversations: list[Conversation], redactor: Redactor) -> tuple[list[list[dict[str, str]]], Counter[str]]:
    contents = [m.content for conversation in conversations for m in conversation.messages]
    results = iter(redactor.redact_many(contents))
    counts: Counter[str] = Counter()
    redacted = []
    for conversation in conversations:
        messages = []
        for message in conversation.messages:
            result = next(results)
            counts.update(result.counts)
            messages.append({"role": message.role, "content": result.text})
        redacted.append(messages)
    return redacted, counts
