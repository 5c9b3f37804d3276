"""Forgetting a conversation everywhere it went: the store, the export, every run's kept training data, and
the adapters that learned it (tainted in the registry). `milton-lora memory forget` and the dashboard call
`forget_everywhere` (the dashboard shows `plan_forget` first); `adapters_that_learned` / `lineage_of` answer the
lineage questions.

Decisions:
- Files are rewritten line by line through their lineage (keyed hashes): the export, and every run's kept
  conversations and preferences (`KEPT_DATA`); a file made before lineage was recorded cannot be rewritten that
  way, so if it holds a forgotten turn's text it is deleted (a run's kept data: replay from that run then says it
  is gone; the export: `milton-lora export` makes a new one).
- Adapters keep their weights (the registry's history and a rollback need them) but a tainted adapter can
  never be promoted or continued; production tainted is reported with the two ways out: roll back to the
  newest untainted adapter, or `milton-lora cycle` (which then trains from new weights).
- Last, every file under the home up to 64 MiB is searched for the forgotten turns' text (turns of 24
  characters or more: shorter ones are too common to mean anything). A JSON-lines file that holds one
  (an evaluation's `judgements.jsonl` quotes held-out prompts) loses those lines; anything else that still
  holds one is reported, for the person to delete.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from milton_lora.export import rewrite_without
from milton_lora.fileio import atomic_write_files
from milton_lora.lineage import ExportLineage, Lineage, LineMap, keep_lines
from milton_lora.memory import Conversation, MemoryStore
from milton_lora.memory.forget import forget_conversations
from milton_lora.record import read_record
from milton_lora.registry import Registry
from milton_lora.settings import (
    EXPORT_METADATA,
    RUN_PREFERENCE_LINEAGE,
    RUN_TRAIN_DATA,
    RUN_TRAIN_LINEAGE,
    RUN_TRAIN_PREFERENCES,
    Settings,
)

MIN_TEXT = 24
# A run's kept data files, each with the lineage of its lines: conversations (SFT), preferences (DPO/KTO).
KEPT_DATA = ((RUN_TRAIN_DATA, RUN_TRAIN_LINEAGE), (RUN_TRAIN_PREFERENCES, RUN_PREFERENCE_LINEAGE))
MAX_SCANNED = 64 << 20


@dataclass
class ForgetReport:
    """What a forget did, and what the person should do next."""

    forgotten: int
    rewritten: list[Path] = field(default_factory=list)
    deleted: list[Path] = field(default_factory=list)
    tainted: list[str] = field(default_factory=list)
    production_tainted: str | None = None
    rollback_to: str | None = None
    rollback_command: str | None = None
    leftovers: list[Path] = field(default_factory=list)

    def lines(self) -> list[tuple[bool, str]]:
        """What happened and what to do next, in words, each with whether it is a warning (`memory forget` prints
        them, the dashboard shows them)."""
        said = [(False, f"Forgot {self.forgotten} conversation(s); the store keeps only a keyed hash of each.")]
        said += [(False, f"  rewrote {path} without them") for path in self.rewritten]
        said += [(False, f"  deleted {path} (it held their text and no lineage to rewrite it by)")
                 for path in self.deleted]  # fmt: skip
        if self.tainted:
            said.append((False, f"Tainted (learned them; can no longer be promoted): {', '.join(self.tainted)}"))
        if self.production_tainted:
            back = (f"{self.rollback_command}   # back to {self.rollback_to}, the newest untainted adapter, or"
                    if self.rollback_command else "no untainted adapter to go back to;")  # fmt: skip
            tainted = f"production {self.production_tainted} learned a forgotten conversation and is tainted."
            said.append((True, tainted))
            said.append((False, f"  Fix: {back}\n       milton-lora cycle   # retrains from new weights without it"))
        said += [(True, f"{path} still holds forgotten text (not a file milton-lora rewrites); delete or edit it")
                 for path in self.leftovers]  # fmt: skip
        return said


@dataclass
class ForgetPlan:
    """What forgetting some conversations would do, found through lineage (keyed hashes, no text read): the
    export's parts and the runs whose kept data would lose their lines, and the adapters that would be tainted.
    `export_parts` is None for an export without lineage (deleted if it holds their text)."""

    export_parts: list[str] | None
    runs: list[str]
    taints: list[str]
    production: str | None  # the production adapter, when it is among `taints`


def plan_forget(settings: Settings, identities: set[str]) -> ForgetPlan:
    """What `forget_everywhere` would rewrite and taint for the conversations with these identity hashes; the
    search of the whole home for their text that follows it is not foreseen here."""
    export_parts: list[str] | None = []
    metadata = settings.export_dir / EXPORT_METADATA
    if metadata.exists():
        recorded = json.loads(metadata.read_text()).get("lineage")
        lineage = ExportLineage.model_validate(recorded) if recorded else None
        export_parts = None if lineage is None else [
            part for part in ("train", "test", "preferences")
            if any(seen.identity in identities for seen in getattr(lineage, part))
        ]  # fmt: skip
    runs = []
    for run_dir in sorted(settings.runs_dir.glob("*")):
        maps = [run_dir / line_map for data, line_map in KEPT_DATA if (run_dir / data).exists()]
        held = [LineMap.model_validate_json(m.read_text()).lines for m in maps if m.exists()]
        if any(seen.identity in identities for lines in held for seen in lines):
            runs.append(run_dir.name)
    registry = Registry.of(settings)
    data = registry.load()
    taints = [entry.run_id for entry in data.newest_first() if entry.tainted is None
              and lineage_of(registry, entry.run_id).learned_identities() & identities]  # fmt: skip
    production = data.production()
    return ForgetPlan(export_parts, runs, taints, production.run_id if production and production.run_id in taints
                      else None)  # fmt: skip


def forget_everywhere(
    settings: Settings, conversations: list[Conversation], reason: str = "memory forget"
) -> ForgetReport:
    """Forget `conversations` in the store and everywhere their text or weights went (see the module's doc)."""
    with MemoryStore(settings.memory_db) as store:
        ids = {c.id for c in conversations}
        edits = [given.edited for (owner, _), given in store.feedback().items() if owner in ids and given.edited]
        texts = turn_texts(conversations, edits)
        forget_conversations(store, conversations, reason, datetime.now(timezone.utc))
        forgotten = set(store.tombstones())
    report = ForgetReport(forgotten=len(conversations))
    removed = rewrite_without(settings.export_dir, forgotten)
    if removed:
        report.rewritten.append(settings.export_dir)
    elif removed is None and _holds_any(settings.export_dir, texts):
        report.deleted += _delete_files(settings.export_dir)
    for run_dir in sorted(settings.runs_dir.glob("*")):
        for data, line_map in KEPT_DATA:
            if (run_dir / data).exists():
                _rewrite_run_data(run_dir / data, run_dir / line_map, forgotten, texts, report)
    registry = Registry.of(settings)
    report.tainted = taint_adapters(registry, forgotten, f"{reason}: learned a forgotten conversation")
    production = registry.load().production()
    if production is not None and production.tainted is not None:
        report.production_tainted = production.run_id
        fallback = registry.newest_untainted(exclude=production.run_id)
        if fallback is not None:
            report.rollback_to = fallback.run_id
            report.rollback_command = (
                "milton-lora promote --rollback"
                if fallback.status == "archived"
                else f"milton-lora promote {fallback.run_id} --to-production"
            )
    for path in files_holding(settings.home, texts):
        if path.suffix == ".jsonl" and _drop_lines_holding(path, texts):
            report.rewritten.append(path)
        else:
            report.leftovers.append(path)
    return report


def _drop_lines_holding(path: Path, texts: set[bytes]) -> bool:
    """Rewrite a JSON-lines file (a run's judgements, a kept file without lineage) without the lines that hold
    forgotten text; False when that would not remove it (it spans lines)."""
    kept = [line for line in path.read_bytes().splitlines(keepends=True) if not any(t in line for t in texts)]
    data = b"".join(kept)
    if any(t in data for t in texts):
        return False
    atomic_write_files({path: data})
    return True


def turn_texts(conversations: list[Conversation], edits: Sequence[str] = ()) -> set[bytes]:
    """The turns' text (with their abandoned alternatives and the `edits` made to them) as files hold it: as
    written, and as JSON writes it (escaped newlines and quotes)."""
    every = [
        text for c in conversations for m in c.messages for text in (m.content, *(a.content for a in m.alternatives))
    ]
    turns = [text for text in [*every, *edits] if len(text) >= MIN_TEXT]
    return {t.encode() for t in turns} | {json.dumps(t, ensure_ascii=False)[1:-1].encode() for t in turns}


def _rewrite_run_data(data: Path, map_path: Path, forgotten: set[str], texts: set[bytes],
                      report: ForgetReport) -> None:  # fmt: skip
    lines = data.read_text().splitlines()
    line_map = LineMap.model_validate_json(map_path.read_text()) if map_path.exists() else LineMap()
    kept = keep_lines(lines, line_map.lines, forgotten)
    if kept is None:
        if _holds_any(data.parent, texts, only=data):
            data.unlink()
            report.deleted.append(data)
        return
    if len(kept[0]) == len(lines):
        return
    atomic_write_files(
        {
            data: "".join(line + "\n" for line in kept[0]).encode(),
            map_path: LineMap(lines=kept[1]).model_dump_json(indent=2).encode(),
        }
    )
    report.rewritten.append(data)


def taint_adapters(registry: Registry, forgotten: set[str], reason: str) -> list[str]:
    """Mark tainted every registered, not yet tainted adapter whose lineage learned a forgotten conversation."""
    found = {}
    for entry in registry.load().adapters.values():
        if entry.tainted is None:
            learned = lineage_of(registry, entry.run_id).learned_identities() & forgotten
            if learned:
                found[entry.run_id] = len(learned)
    return [e.run_id for e in registry.mark_tainted(found, reason)] if found else []


def lineage_of(registry: Registry, run_id: str) -> Lineage:
    """The lineage an adapter's training record holds (empty for an adapter trained before lineage existed, or
    made elsewhere)."""
    record = read_record(registry.adapter_dir(run_id))
    return record.lineage if record is not None else Lineage()


def adapters_that_learned(registry: Registry, identity: str) -> list[tuple[str, str, str]]:
    """(run id, created at, how it met the conversation) for every registered adapter whose lineage holds it."""
    found = []
    for entry in registry.load().newest_first():
        role = lineage_of(registry, entry.run_id).role_of(identity)
        if role is not None:
            found.append((entry.run_id, entry.created_at, role))
    return found


def files_holding(root: Path, texts: set[bytes]) -> list[Path]:
    """Files under `root` (up to 64 MiB each) whose bytes hold any of `texts`."""
    return [p for p in sorted(root.rglob("*")) if _holds_any(p, texts, only=p)] if texts else []


def _holds_any(folder: Path, texts: set[bytes], only: Path | None = None) -> bool:
    paths = [only] if only is not None else list(folder.glob("*"))
    for path in paths:
        if path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_SCANNED:
            data = path.read_bytes()
            if any(text in data for text in texts):
                return True
    return False


def _delete_files(folder: Path) -> list[Path]:
    deleted = [p for p in folder.glob("*") if p.is_file()]
    for path in deleted:
        path.unlink()
    return deleted
