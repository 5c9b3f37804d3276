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
- Preference signals (`memory/signals.py` has the rules) of the exported conversations go to
  `preferences.jsonl`: each line carries its conversation's split, every text is redacted as the chats
  are, and its lineage is recorded line for line like the splits'. The file is written on every export,
  empty when there are no signals, so a stale one never outlives the export it came from.
- All four files are written atomically together; a failed export leaves the previous one intact.
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
from typing import Any

from milton_lora import __version__
from milton_lora.config import ExportConfig, load_model
from milton_lora.errors import MiltonError
from milton_lora.fileio import atomic_write_files, sha256_bytes
from milton_lora.lineage import ExportLineage, Seen, is_restated, keep_lines
from milton_lora.memory import Conversation, MemoryStore, Message
from milton_lora.memory.models import Feedback
from milton_lora.memory.signals import Harvest, Signal, Turn, harvest
from milton_lora.preferences import PreferenceLabel, PreferencePair, PromptTurn, preference_line
from milton_lora.redact import Redaction, Redactor, in_context
from milton_lora.settings import EXPORT_METADATA, EXPORT_PREFERENCES, EXPORT_TEST, EXPORT_TRAIN, Settings

TEST_PERCENT = 20
# A closed block anywhere, or everything before a lone closing tag (templates that open the block themselves).
_REASONING = re.compile(r"<(think|thinking)>.*?</\1>\s*|^(?:(?!<think).)*?</think(?:ing)?>\s*", re.DOTALL)


@dataclass(frozen=True)
class ExportOptions:
    """`MILTON_HOME/export.yaml`'s choices, passed down by the caller."""

    include_attachments: bool = True
    keep_reasoning: bool = False
    # Read by the caller, which restates after the export (`milton_lora.restate`); the export itself ignores them.
    restate_facts: bool = False
    restate_max_facts: int = 64


def export_options_of(settings: Settings) -> ExportOptions:
    """The home's `export.yaml` (optional) as the export's options: what `export`, `cycle` and the dashboard's
    cycle plan export with."""
    config = load_model(settings.export_config_path, ExportConfig, defaults_if_missing=True)
    return ExportOptions(**config.model_dump())


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
    preferences: dict[str, Any] = field(default_factory=dict)  # preference_counts, skips, redactions
    restated: dict[str, Any] = field(default_factory=dict)  # restate.RestateSummary, when the caller restated
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
            *((f"preference {what}", n) for what, n in _preference_rows(self.preferences)),
            *_restated_rows(self.restated),
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
    options = options or ExportOptions()
    redactor = redactor or Redactor()
    in_window, since, seen, feedback = _window(store_path, days, now)
    selection = _select(in_window, options)
    kept = [conversation for conversation, _ in selection.kept]
    redacted, counts, known = _redact([turns for _, turns in selection.kept], redactor)
    lines: dict[str, list[str]] = {"train": [], "test": [], "preferences": []}
    lineage = ExportLineage()
    for conversation, messages in zip(kept, redacted, strict=True):
        split = split_of(conversation.key)
        lines[split].append(json.dumps({"messages": messages}, ensure_ascii=False))
        getattr(lineage, split).append(seen[conversation.key])
    found, owners = _harvest(kept, feedback, options)
    preferences, preference_redactions = _redacted_preferences(found.signals, owners, redactor, known)
    for preference, conversation in zip(preferences, owners, strict=True):
        lines["preferences"].append(preference_line(preference))
        lineage.preferences.append(seen[conversation.key])
    names = {"train": EXPORT_TRAIN, "test": EXPORT_TEST, "preferences": EXPORT_PREFERENCES}
    payloads = {names[part]: "".join(line + "\n" for line in rows).encode() for part, rows in lines.items()}

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
        preferences={
            **preference_counts(lines["preferences"]),
            "skipped_near_identical": found.near_identical,
            "skipped_over_cap": found.capped,
            "redactions": dict(sorted(preference_redactions.items())),
        },
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
    """What an export of the same window would redact, each redaction in context; writes nothing. Besides the
    kept turns it shows the texts that reach `preferences.jsonl`: abandoned regenerated replies (role
    `assistant, abandoned reply`) and the person's edits of a reply (`assistant, edited`), numbered by the
    reply's position in the stored conversation."""
    in_window, _, _, feedback = _window(store_path, days, now or datetime.now(timezone.utc))
    selection = _select(in_window, options or ExportOptions())
    messages = [
        (conversation, index, turn) for conversation, turns in selection.kept for index, turn in enumerate(turns)
    ]
    messages += _preference_texts([conversation for conversation, _ in selection.kept], feedback)
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


def _preference_texts(
    kept: list[Conversation], feedback: dict[tuple[int, int], Feedback]
) -> list[tuple[Conversation, int, Turn]]:
    """The texts beyond the kept turns that an export's preferences carry: each reply's abandoned alternatives
    and the person's edit of it, with the reply's position."""
    texts: list[tuple[Conversation, int, Turn]] = []
    for conversation in kept:
        for position, message in enumerate(conversation.messages):
            texts += [
                (conversation, position, {"role": "assistant, abandoned reply", "content": alternative.content})
                for alternative in message.alternatives
            ]
            edited = feedback.get((conversation.id or 0, position))
            if edited is not None and edited.edited:
                texts.append((conversation, position, {"role": "assistant, edited", "content": edited.edited}))
    return texts


def _window(
    store_path: Path, days: int | None, now: datetime
) -> tuple[list[Conversation], datetime | None, dict[str, Seen], dict[tuple[int, int], Feedback]]:
    """The conversations active in the last `days` days (all without `days`) with their replies' abandoned
    alternatives, where the window starts, each one's keyed hashes (by conversation key) for the export's
    lineage, and the store's feedback."""
    if days is not None and days <= 0:
        raise MiltonError(f"--days must be a positive number of days, got {days}")
    if not store_path.exists():
        raise MiltonError(f"{store_path}: no memory store yet; import history first with `milton-lora memory import`")
    since = now - timedelta(days=days) if days is not None else None
    with MemoryStore(store_path) as store:
        in_window = store.conversations(since, with_alternatives=True)
        seen = {c.key: Seen(identity=store.identity_hash(c.key), version=store.version_hash(c)) for c in in_window}
        feedback = store.feedback()
    if not in_window:
        window = f"the last {days} days" if days is not None else "the store"
        raise MiltonError(f"{store_path}: no conversations in {window}; widen --days or import more history")
    return in_window, since, seen, feedback


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


def _redact(
    conversations: list[list[Turn]], redactor: Redactor
) -> tuple[list[list[Turn]], Counter[str], dict[str, Redaction]]:
    """The conversations redacted, the redactions by label, and each text's redaction (the preferences repeat
    these texts in their prompts and replies: redacting them once is the same redaction, faster)."""
    contents = [turn["content"] for turns in conversations for turn in turns]
    done = redactor.redact_many(contents)
    results = iter(done)
    counts: Counter[str] = Counter()
    redacted = []
    for turns in conversations:
        messages = []
        for turn in turns:
            result = next(results)
            counts.update(result.counts)
            messages.append({"role": turn["role"], "content": result.text})
        redacted.append(messages)
    return redacted, counts, dict(zip(contents, done, strict=True))


def _harvest(
    kept: list[Conversation], feedback: dict[tuple[int, int], Feedback], options: ExportOptions
) -> tuple[Harvest, list[Conversation]]:
    """The preference signals of the exported conversations, and each signal's conversation."""
    by_conversation: dict[int, dict[int, Feedback]] = {}
    for (conversation_id, position), given in feedback.items():
        by_conversation.setdefault(conversation_id, {})[position] = given
    found, owners = Harvest(), []
    for conversation in kept:

        def prepare(messages: list[Message], of: Conversation = conversation) -> list[Turn]:
            part = Conversation(of.source, of.source_id, of.title, of.created_at, messages)
            return _prepared(part, options, _Selection())[0]

        before = len(found.signals)
        harvest(conversation, by_conversation.get(conversation.id or 0, {}), prepare, found)
        owners += [conversation] * (len(found.signals) - before)
    return found, owners


def _redacted_preferences(
    signals: list[Signal], owners: list[Conversation], redactor: Redactor, known: dict[str, Redaction]
) -> tuple[list[PreferencePair | PreferenceLabel], Counter[str]]:
    """Each signal as its `preferences.jsonl` line, every text redacted (the texts of `known` as they already
    were), with its conversation's split."""
    texts = [
        [turn["content"] for turn in s.prompt] + [s.chosen] + ([s.rejected] if s.rejected else []) for s in signals
    ]
    new = list(dict.fromkeys(text for group in texts for text in group if text not in known))
    known = {**known, **dict(zip(new, redactor.redact_many(new), strict=True))}
    counts: Counter[str] = Counter()
    made: list[PreferencePair | PreferenceLabel] = []
    for signal, group, owner in zip(signals, texts, owners, strict=True):
        clean = []
        for text in group:
            counts.update(known[text].counts)
            clean.append(known[text].text)
        prompt = [PromptTurn(role=t["role"], content=c) for t, c in zip(signal.prompt, clean, strict=False)]
        rest = clean[len(prompt) :]
        split = split_of(owner.key)
        if signal.rejected is None:
            made.append(
                PreferenceLabel(split=split, prompt=prompt, completion=rest[0], desirable=bool(signal.desirable))
            )
        else:
            made.append(
                PreferencePair(split=split, source=signal.source, prompt=prompt, chosen=rest[0], rejected=rest[1])
            )
    return made, counts


def preference_counts(lines: list[str]) -> dict[str, Any]:
    """What `metadata.json` counts of `preferences.jsonl`'s lines: pairs by source, labels by desirable,
    lines by split."""
    pairs: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    splits: Counter[str] = Counter()
    for line in lines:
        item = json.loads(line)
        splits[item["split"]] += 1
        if item["kind"] == "pair":
            pairs[item["source"]] += 1
        else:
            labels["desirable" if item["desirable"] else "undesirable"] += 1
    return {
        "pairs": {source: pairs[source] for source in ("regenerated", "edited")},
        "labels": {kind: labels[kind] for kind in ("desirable", "undesirable")},
        "by_split": {split: splits[split] for split in ("train", "test")},
    }


def _preference_rows(preferences: dict[str, Any]) -> list[tuple[str, object]]:
    if not preferences:
        return []
    return [
        *((f"pairs ({source})", n) for source, n in preferences["pairs"].items()),
        *((f"labels ({kind})", n) for kind, n in preferences["labels"].items()),
        ("pairs skipped (near-identical)", preferences["skipped_near_identical"]),
        ("pairs skipped (over the per-reply cap)", preferences["skipped_over_cap"]),
    ]


def _restated_rows(restated: dict[str, Any]) -> list[tuple[str, object]]:
    if not restated:
        return []
    return [
        ("restated: statements found", restated["statements_found"]),
        ("restated: over the cap (not restated)", restated["over_cap"]),
        ("restated: lines written to train", restated["written"]),
        ("restated: dropped (answer without the fact)", restated["dropped"]),
        ("restated: questions from the rule", restated["questions_from_rule"]),
    ]


def rewrite_without(output_dir: Path, forgotten: set[str]) -> int | None:
    """Take the forgotten conversations' lines out of the export in `output_dir` (the splits, preferences.jsonl,
    counts, sha256 and lineage in metadata.json rewritten together); returns how many lines went, None when the
    export has no lineage to find them by (an export made before lineage was recorded)."""
    metadata_path = output_dir / EXPORT_METADATA
    if not metadata_path.exists():
        return 0
    metadata = json.loads(metadata_path.read_text())
    lineage = ExportLineage.model_validate(metadata.get("lineage") or {})
    files: dict[Path, bytes] = {}
    removed = conversations = messages = 0
    for part, name in (("train", EXPORT_TRAIN), ("test", EXPORT_TEST), ("preferences", EXPORT_PREFERENCES)):
        path = output_dir / name
        lines = path.read_text().splitlines() if path.exists() else []
        kept = keep_lines(lines, getattr(lineage, part), forgotten)
        if kept is None:
            return None
        removed += len(lines) - len(kept[0])
        setattr(lineage, part, kept[1])
        if part == "preferences":
            if path.exists():
                files[path] = "".join(line + "\n" for line in kept[0]).encode()
                metadata["files"][name] = sha256_bytes(files[path])
                metadata["preferences"] = {**metadata.get("preferences", {}), **preference_counts(kept[0])}
            continue
        parsed = [json.loads(line) for line in kept[0]]
        own = [item for item in parsed if not is_restated(item)]
        conversations += sum(not is_restated(json.loads(line)) for line in lines) - len(own)
        messages += sum(len(item["messages"]) for item in own)
        files[path] = "".join(line + "\n" for line in kept[0]).encode()
        metadata[f"{part}_conversations"] = len(own)
        metadata["files"][name] = sha256_bytes(files[path])
        if part == "train" and metadata.get("restated"):
            metadata["restated"]["written"] = len(parsed) - len(own)
    if removed:
        metadata["conversations_exported"] -= conversations
        metadata["messages_exported"] = messages
        metadata["lineage"] = lineage.model_dump()
        files[metadata_path] = json.dumps(metadata, indent=2).encode() + b"\n"
        atomic_write_files(files)
    return removed
