"""Export a time window of the memory store to redacted `train.jsonl` / `test.jsonl` / `metadata.json`.

Decisions:
- A conversation is in the window when any of its messages is (`created_at >= now - days`, so the
  boundary instant is inside); it is then exported whole, because the earlier turns are the context
  the later ones answer.
- The split is by conversation and stable: sha256 of the conversation key (`source:source_id`) picks
  the side, so a conversation never moves between train and test across exports with other windows.
- Each conversation is made trainable on every chat template (`ExportOptions` and `_prepared`):
  attachments are rendered into their user turn or left out (`include_attachments`), reasoning
  traces (`<think>…</think>`) are stripped from answers unless `keep_reasoning`; then empty turns go,
  same-role neighbours are joined, a system turn after the first is dropped, and assistant turns before
  the first user turn are dropped (a ChatGPT chat whose first message was only an attachment starts with
  the answer, which the templates that require alternation, Llama 2, Mistral and Gemma, refuse). Each
  repaired conversation is named, with what was done, in the summary and `metadata.json`; one left
  without an assistant turn is skipped, named and counted. No conversation ever aborts the export.
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
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from milton_lora import __version__
from milton_lora.errors import MiltonError
from milton_lora.fileio import atomic_write_files, sha256_bytes
from milton_lora.lineage import ExportLineage, Seen, keep_lines
from milton_lora.memory import Conversation, MemoryStore
from milton_lora.redact import Redactor, in_context
from milton_lora.settings import EXPORT_METADATA, EXPORT_TEST, EXPORT_TRAIN

TEST_PERCENT = 20
# A closed block anywhere, or everything before a lone closing tag (templates that open the block themselves).
_REASONING = re.compile(r"<(think|thinking)>.*?</\1>\s*|^(?:(?!<think).)*?</think(?:ing)?>\s*", re.DOTALL)
Turn = dict[str, str]


@dataclass(frozen=True)
class ExportOptions:
    """`MILTON_HOME/export.yaml`'s choices, passed down by the caller."""

    include_attachments: bool = True
    keep_reasoning: bool = False


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
    reasoning_stripped: int = 0
    repaired: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    redactions: dict[str, int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    lineage: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # lineage.ExportLineage
    tool_version: str = __version__

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def rows(self) -> list[tuple[str, object]]:
        """What `export` (and `cycle`, and the dashboard's cycle plan) show of it."""
        days = self.window_days
        return [
            ("window", f"last {days} days" if days is not None else "all history"),
            ("conversations in window", self.conversations_in_window),
            ("skipped (no assistant turn)", self.skipped_no_assistant),
            ("repaired (each named below)", len(self.repaired)),
            ("reasoning traces stripped", self.reasoning_stripped),
            ("duplicates dropped", self.duplicates_dropped),
            ("train conversations", self.train_conversations),
            ("test conversations", self.test_conversations),
            ("messages", self.messages_exported),
            *((f"redacted [{label}]", n) for label, n in self.redactions.items()),
        ]


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
    options: ExportOptions | None = None,
) -> ExportSummary:
    """Read the window from the store, redact, split, and (unless `dry_run`) write the three files."""
    now = now or datetime.now(timezone.utc)
    in_window, since, seen = _window(store_path, days, now)
    selection = _select(in_window, options or ExportOptions())
    kept = [conversation for conversation, _ in selection.kept]
    redacted, counts = _redact([turns for _, turns in selection.kept], redactor or Redactor())
    lines: dict[str, list[str]] = {"train": [], "test": []}
    lineage = ExportLineage()
    for conversation, messages in zip(kept, redacted, strict=True):
        split = split_of(conversation.key)
        lines[split].append(json.dumps({"messages": messages}, ensure_ascii=False))
        getattr(lineage, split).append(seen[conversation.key])
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
        skipped_no_assistant=len(selection.skipped),
        duplicates_dropped=selection.duplicates,
        reasoning_stripped=selection.reasoning_stripped,
        repaired=selection.repaired,
        skipped=selection.skipped,
        redactions=dict(sorted(counts.items())),
        files={name: sha256_bytes(data) for name, data in payloads.items()},
        lineage=lineage.model_dump(),
    )
    if not dry_run:
        metadata = json.dumps(summary.as_dict(), indent=2).encode() + b"\n"
        files = {output_dir / name: data for name, data in payloads.items()}
        atomic_write_files({**files, output_dir / EXPORT_METADATA: metadata})
    return summary


def review_export(
    store_path: Path,
    days: int | None,
    now: datetime | None = None,
    redactor: Redactor | None = None,
    options: ExportOptions | None = None,
) -> ExportReview:
    """What an export of the same window would redact, each redaction in context; writes nothing."""
    in_window, _, _ = _window(store_path, days, now or datetime.now(timezone.utc))
    selection = _select(in_window, options or ExportOptions())
    messages = [
        (conversation, index, turn) for conversation, turns in selection.kept for index, turn in enumerate(turns)
    ]
    findings = (redactor or Redactor()).find_many([turn["content"] for _, _, turn in messages])
    items: list[ReviewItem] = []
    counts: Counter[str] = Counter()
    for (conversation, index, turn), found in zip(messages, findings, strict=True):
        items += [
            ReviewItem(conversation.key, conversation.title, index, turn["role"], *shown)
            for shown in in_context(turn["content"], found)
        ]
        counts.update(finding.label for finding in found)
    return ExportReview(len(selection.kept), len(messages), dict(sorted(counts.items())), items)


def _window(
    store_path: Path, days: int | None, now: datetime
) -> tuple[list[Conversation], datetime | None, dict[str, Seen]]:
    """The conversations active in the last `days` days (all without `days`), where the window starts, and
    each one's keyed hashes (by conversation key) for the export's lineage."""
    if days is not None and days <= 0:
        raise MiltonError(f"--days must be a positive number of days, got {days}")
    if not store_path.exists():
        raise MiltonError(f"{store_path}: no memory store yet; import history first with `milton-lora memory import`")
    since = now - timedelta(days=days) if days is not None else None
    with MemoryStore(store_path) as store:
        in_window = store.conversations(since)
        seen = {c.key: Seen(identity=store.identity_hash(c.key), version=store.version_hash(c)) for c in in_window}
    if not in_window:
        window = f"the last {days} days" if days is not None else "the store"
        raise MiltonError(f"{store_path}: no conversations in {window}; widen --days or import more history")
    return in_window, since, seen


@dataclass
class _Selection:
    kept: list[tuple[Conversation, list[Turn]]] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    duplicates: int = 0
    reasoning_stripped: int = 0


def _select(conversations: list[Conversation], options: ExportOptions) -> _Selection:
    selection = _Selection()
    seen: set[str] = set()
    for conversation in conversations:
        turns, repairs = _prepared(conversation, options, selection)
        name = f"{conversation.key}" + (f" ('{conversation.title[:60]}')" if conversation.title else "")
        if not any(turn["role"] == "assistant" for turn in turns):
            selection.skipped.append(f"{name}: no assistant turn")
            continue
        fingerprint = sha256_bytes(json.dumps([(t["role"], t["content"]) for t in turns]).encode())
        if fingerprint in seen:
            selection.duplicates += 1
            continue
        seen.add(fingerprint)
        if repairs:
            selection.repaired.append(f"{name}: {'; '.join(repairs)}")
        selection.kept.append((conversation, turns))
    return selection


def _prepared(conversation: Conversation, options: ExportOptions, found: _Selection) -> tuple[list[Turn], list[str]]:
    """The conversation's turns as every chat template takes them, and what was repaired to get there."""
    turns: list[Turn] = []
    repairs: Counter[str] = Counter()
    for message in conversation.messages:
        text = message.text(options.include_attachments)
        if message.role == "assistant" and not options.keep_reasoning:
            text, stripped = _REASONING.subn("", text)
            found.reasoning_stripped += stripped
        if not text.strip():
            repairs["dropped an empty turn"] += 1
        elif turns and turns[-1]["role"] == message.role:
            turns[-1] = {"role": message.role, "content": f"{turns[-1]['content']}\n\n{text}"}
            repairs[f"joined two {message.role} turns in a row"] += 1
        elif message.role == "system" and turns:
            repairs["dropped a system turn after the start"] += 1
        elif message.role == "assistant" and all(turn["role"] == "system" for turn in turns):
            repairs["dropped an assistant turn before the first user turn"] += 1
        else:
            turns.append({"role": message.role, "content": text})
    return turns, [f"{what} (x{n})" if n > 1 else what for what, n in repairs.items()]


def _redact(conversations: list[list[Turn]], redactor: Redactor) -> tuple[list[list[Turn]], Counter[str]]:
    contents = [turn["content"] for turns in conversations for turn in turns]
    results = iter(redactor.redact_many(contents))
    counts: Counter[str] = Counter()
    redacted = []
    for turns in conversations:
        messages = []
        for turn in turns:
            result = next(results)
            counts.update(result.counts)
            messages.append({"role": turn["role"], "content": result.text})
        redacted.append(messages)
    return redacted, counts


def rewrite_without(output_dir: Path, forgotten: set[str]) -> int | None:
    """Take the forgotten conversations' lines out of the export in `output_dir` (files, counts, sha256 and
    lineage in metadata.json rewritten together); returns how many lines went, None when the export has no
    lineage to find them by (an export made before lineage was recorded)."""
    metadata_path = output_dir / EXPORT_METADATA
    if not metadata_path.exists():
        return 0
    metadata = json.loads(metadata_path.read_text())
    lineage = ExportLineage.model_validate(metadata.get("lineage") or {})
    files: dict[Path, bytes] = {}
    removed = messages = 0
    for split, name in (("train", EXPORT_TRAIN), ("test", EXPORT_TEST)):
        path = output_dir / name
        lines = path.read_text().splitlines() if path.exists() else []
        kept = keep_lines(lines, getattr(lineage, split), forgotten)
        if kept is None:
            return None
        removed += len(lines) - len(kept[0])
        messages += sum(len(json.loads(line)["messages"]) for line in kept[0])
        setattr(lineage, split, kept[1])
        files[path] = "".join(line + "\n" for line in kept[0]).encode()
        metadata[f"{split}_conversations"] = len(kept[0])
        metadata["files"][name] = sha256_bytes(files[path])
    if removed:
        metadata["conversations_exported"] -= removed
        metadata["messages_exported"] = messages
        metadata["lineage"] = lineage.model_dump()
        files[metadata_path] = json.dumps(metadata, indent=2).encode() + b"\n"
        atomic_write_files(files)
    return removed
