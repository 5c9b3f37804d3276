"""The adapter registry (`models/registry.json`): lifecycle, promotion, rollback, and its safety.

Lifecycle: training → candidate (only by evaluation) → production (only by a person) → archived.
Any adapter can be archived; at most one is in production. Promotion and rollback re-point
production, like moving an alias: nothing is copied or deleted, and every transition is appended to
the adapter's history.

Decisions:
- `--force` skips the evaluation requirement and the confirmation question, never the integrity
  checks (files present, sha256 as registered) nor the vLLM compatibility checks.
- Rollback walks back through the production stack: promote A, B, C then rollback twice gives A.
- Every change happens under a file lock and is written atomically; the registry file is never
  rewritten when it cannot be read, so a hand-edit gone wrong is reported, not repaired silently.
- Every transition records who made it (the OS user) and, when given (`--note`), why.
- Wherever a run id is taken, `latest` (the newest adapter), `latest-candidate` and `production` name
  one; an unknown id is an error listing the closest existing ids, newest first.
- Exports of an adapter for other engines (`adapter export`: format, path, sha256) are kept under its
  entry; a registry written before they existed reads as having none.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from filelock import FileLock, Timeout
from pydantic import BaseModel, Field, ValidationError

from milton_lora.errors import MiltonError
from milton_lora.fileio import atomic_write_text, sha256_file
from milton_lora.settings import ADAPTER_CONFIG, ADAPTER_WEIGHTS, Settings, current_user
from milton_lora.vllm_rules import check_vllm_compatible

Status = Literal["training", "candidate", "production", "archived"]
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_LOCK_TIMEOUT_S = 60


class Transition(BaseModel):
    at: str
    from_status: Status | None = Field(alias="from")
    to_status: Status = Field(alias="to")
    reason: str
    command: str
    who: str | None = None
    note: str | None = None

    model_config = {"populate_by_name": True}


class ExportRecord(BaseModel):
    """One export of an adapter for another engine (`milton-lora adapter export`)."""

    format: Literal["gguf", "ollama", "merged"]
    path: str  # relative to MILTON_HOME when under it
    sha256: str  # of the file; of a folder, over its files' names and sha256 (`fileio.sha256_tree`)
    created_at: str
    outtype: str | None = None  # gguf and ollama: f16, f32 or q8_0
    base: str | None = None  # the base it runs on there: a GGUF file, or the Modelfile's FROM


class Taint(BaseModel):
    """Why an adapter may no longer be promoted: it learned conversations that were forgotten since."""

    reason: str
    at: str
    conversations: int  # how many forgotten conversations its lineage holds


class Entry(BaseModel):
    run_id: str
    status: Status
    created_at: str
    updated_at: str
    adapter_path: str
    run_path: str
    base_model_path: str | None = None
    sha256: str
    metrics: dict[str, float | None] = Field(default_factory=dict)
    pass_rate: float | None = None
    history: list[Transition] = Field(default_factory=list)
    exports: list[ExportRecord] = Field(default_factory=list)
    tainted: Taint | None = None

    def latest_export(self, fmt: str) -> ExportRecord | None:
        return next((record for record in reversed(self.exports) if record.format == fmt), None)


class RegistryFile(BaseModel):
    version: int = 1
    adapters: dict[str, Entry] = Field(default_factory=dict)
    production_stack: list[str] = Field(default_factory=list)

    def production(self) -> Entry | None:
        return next((e for e in self.adapters.values() if e.status == "production"), None)

    def newest_first(self) -> list[Entry]:
        return sorted(self.adapters.values(), key=lambda e: (e.created_at, e.run_id), reverse=True)


def latest_note(entry: Entry) -> str | None:
    """The note of the most recent transition that has one (why it was promoted, rolled back...)."""
    return next((t.note for t in reversed(entry.history) if t.note), None)


# Names that stand for a run id wherever one is taken.
RUN_ALIASES = ("latest", "latest-candidate", "production")


def validate_run_id(run_id: str) -> str:
    """Refuse ids that could address files outside `adapters/` or `runs/`."""
    if not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise MiltonError(
            f"'{run_id}' is not a valid run id: use letters, digits, '.', '_' and '-' only (no '/' or '..')"
        )
    return run_id


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Registry:
    """All reads and writes of `registry.json`. Each public method is one locked, atomic change."""

    def __init__(self, path: Path, adapters_dir: Path, runs_dir: Path, who: str | None = None):
        self.path = path
        self.adapters_dir = adapters_dir
        self.runs_dir = runs_dir
        self.who = who  # recorded on every transition this object makes
        self._lock = FileLock(str(path) + ".lock", timeout=_LOCK_TIMEOUT_S)

    @classmethod
    def of(cls, settings: Settings) -> Registry:
        """The registry of one MILTON_HOME, at the paths its settings name, acting as the current OS user."""
        return cls(settings.registry_path, settings.adapters_dir, settings.runs_dir, current_user())

    # --- reading ----------------------------------------------------------------------------

    def load(self) -> RegistryFile:
        if not self.path.exists():
            return RegistryFile()
        try:
            return RegistryFile.model_validate_json(self.path.read_text())
        except (ValidationError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise MiltonError(
                f"{self.path}: not a readable registry ({first}); fix or restore it, it will not be overwritten"
            ) from None

    @property
    def home(self) -> Path:
        return self.path.parent.parent

    def stored_path(self, path: Path) -> str:
        """Paths under MILTON_HOME are stored relative to it, so a home can be moved or copied."""
        return str(path.relative_to(self.home)) if path.is_relative_to(self.home) else str(path)

    def path_of(self, stored: str) -> Path:
        return self.home / stored

    def get(self, run_id: str) -> Entry:
        return self._entry(self.load(), run_id)

    def adapter_dir(self, run_id: str) -> Path:
        return self.adapters_dir / validate_run_id(run_id)

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / validate_run_id(run_id)

    def resolve(self, name: str) -> str:
        """The run id `name` stands for: itself when it exists, or what an alias (`latest`,
        `latest-candidate`, `production`) points at; else an error listing the closest ids, newest first."""
        data = self.load()
        if name in RUN_ALIASES:
            return self._alias(data, name)
        validate_run_id(name)
        if name in data.adapters or (self.adapters_dir / name).is_dir():
            return name
        known = [e.run_id for e in data.newest_first()] + self._unregistered_newest_first(data)
        close = set(difflib.get_close_matches(name, known, n=5, cutoff=0.6))
        suggestions = [run_id for run_id in known if run_id in close] or known[:3]
        hint = f"closest, newest first: {', '.join(suggestions)}" if suggestions else "no adapters yet"
        raise MiltonError(
            f"no adapter {name}: not found in registry nor in {self.adapters_dir} ({hint}; or say latest, "
            f"latest-candidate, production); a folder made elsewhere is registered by evaluating it: "
            f"milton-lora eval --run-id {name}"
        )

    def is_stopped_run(self, name: str) -> bool:
        """Whether `name` is a run that left a folder under runs/ but no adapter (a run stopped by its health
        checks): `report` still draws its curves."""
        validate_run_id(name)
        return self.run_dir(name).is_dir() and not self.adapter_dir(name).is_dir()

    def _alias(self, data: RegistryFile, name: str) -> str:
        if name == "production":
            production = data.production()
            found = [production.run_id] if production else []
        elif name == "latest-candidate":
            found = [e.run_id for e in data.newest_first() if e.status == "candidate"]
        else:
            found = [e.run_id for e in data.newest_first()] or self._unregistered_newest_first(data)
        if not found:
            what = {"production": "no adapter is in production", "latest-candidate": "no adapter is a candidate"}
            raise MiltonError(f"'{name}': {what.get(name, 'no adapters yet')}; see `promote --list`")
        return found[0]

    def _unregistered_newest_first(self, data: RegistryFile) -> list[str]:
        """Adapter folders that are not registered (made elsewhere), newest first."""
        if not self.adapters_dir.is_dir():
            return []
        folders = [p for p in self.adapters_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
        return [p.name for p in sorted(folders, key=lambda p: p.stat().st_mtime, reverse=True)
                if p.name not in data.adapters]  # fmt: skip

    def note_of(self, run_id: str) -> str | None:
        """The latest note recorded for an adapter (None when it is not registered or has none)."""
        entry = self.load().adapters.get(run_id)
        return latest_note(entry) if entry else None

    def history(self, run_id: str | None = None) -> list[tuple[str, Transition]]:
        """Every transition (of one adapter, or all), oldest first: (run id, transition)."""
        data = self.load()
        entries = [self._entry(data, run_id)] if run_id else list(data.adapters.values())
        rows = [(entry.run_id, transition) for entry in entries for transition in entry.history]
        return sorted(rows, key=lambda row: row[1].at)

    def _entry(self, data: RegistryFile, run_id: str) -> Entry:
        validate_run_id(run_id)
        if run_id in data.adapters:
            return data.adapters[run_id]
        hint = f"run evaluation to register it: milton-lora eval --run-id {run_id}"
        if (self.adapters_dir / run_id).is_dir():
            raise MiltonError(f"Adapter {run_id} not found in registry (its folder exists); {hint}")
        raise MiltonError(f"Adapter {run_id} not found in registry; {hint}")

    # --- writing ----------------------------------------------------------------------------

    @contextmanager
    def _changing(self) -> Iterator[RegistryFile]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._lock:
                data = self.load()
                yield data
                atomic_write_text(self.path, data.model_dump_json(indent=2, by_alias=True) + "\n")
        except Timeout:
            raise MiltonError(f"{self.path}: another milton-lora command holds the registry lock; retry") from None

    def register(self, run_id: str, base_model_path: str | None, command: str) -> Entry:
        """Add an adapter folder as `training` (idempotent: an existing entry is returned unchanged)."""
        adapter = self.adapter_dir(run_id)
        weights = adapter / ADAPTER_WEIGHTS
        if not weights.exists():
            raise MiltonError(f"{weights}: missing; train the adapter first")
        with self._changing() as data:
            if run_id in data.adapters:
                return data.adapters[run_id]
            at = now_iso()
            entry = Entry(
                run_id=run_id,
                status="training",
                created_at=at,
                updated_at=at,
                adapter_path=self.stored_path(adapter),
                run_path=self.stored_path(self.run_dir(run_id)),
                base_model_path=base_model_path,
                sha256=sha256_file(weights),
            )
            registered = Transition(
                at=at, from_status=None, to_status="training", reason="registered", command=command, who=self.who
            )
            entry.history.append(registered)
            data.adapters[run_id] = entry
            return entry

    def record_evaluation(
        self,
        run_id: str,
        metrics: dict[str, float | None],
        pass_rate: float,
        promote: bool,
        command: str,
        reason: str | None = None,
    ) -> Entry:
        """Store evaluation results and the sha256 of the evaluated weights; `training` → `candidate` when
        `promote` (never further), recording `reason` (the gate's criteria) on the transition."""
        weights = self.adapter_dir(run_id) / ADAPTER_WEIGHTS
        evaluated_sha = sha256_file(weights) if weights.exists() else None
        with self._changing() as data:
            entry = self._entry(data, run_id)
            entry.sha256 = evaluated_sha or entry.sha256
            entry.metrics = metrics
            entry.pass_rate = pass_rate
            entry.updated_at = now_iso()
            if promote and entry.status == "training":
                self._move(entry, "candidate", reason or f"evaluation pass rate {pass_rate:.1%}", command)
            return entry

    def promote_to_production(
        self, run_id: str, force: bool, max_lora_rank: int, command: str, note: str | None = None
    ) -> Entry | None:
        """Make `run_id` production and archive the current one; returns the archived entry, if any."""
        with self._changing() as data:
            entry = self._entry(data, run_id)
            self.check_promotable(entry, force, max_lora_rank)
            previous = data.production()
            if previous is not None:
                self._move(previous, "archived", f"replaced by {run_id}", command, note)
            self._move(entry, "production", "promoted" + (" with --force" if force else ""), command, note)
            data.production_stack.append(run_id)
            return previous

    def check_promotable(self, entry: Entry, force: bool, max_lora_rank: int) -> None:
        if entry.tainted is not None:  # no flag lifts this: the weights hold what the person asked to forget
            raise MiltonError(
                f"{entry.run_id} is tainted ({entry.tainted.reason}, {entry.tainted.at}) and cannot be promoted; "
                "train a new adapter without it (`milton-lora cycle`)"
            )
        if entry.status == "production":
            raise MiltonError(f"{entry.run_id} is already in production")
        if entry.status != "candidate" and not force:
            why = {
                "training": "has not passed evaluation (status training)",
                "archived": "is archived (use --rollback to restore the previous production)",
            }[entry.status]
            raise MiltonError(f"{entry.run_id} {why}; re-run evaluation, or pass --force to promote it anyway")
        self.check_servable(entry, max_lora_rank)

    def check_servable(self, entry: Entry, max_lora_rank: int) -> None:
        """The checks no flag skips before an adapter goes into production: its files and their sha256 as
        registered, and vLLM's requirements."""
        self.check_integrity(entry)
        check_vllm_compatible(self.path_of(entry.adapter_path), max_lora_rank)

    def check_integrity(self, entry: Entry) -> None:
        adapter = self.path_of(entry.adapter_path)
        weights = adapter / ADAPTER_WEIGHTS
        if not weights.exists() or not (adapter / ADAPTER_CONFIG).exists():
            raise MiltonError(f"{entry.adapter_path}: adapter files are missing; cannot promote {entry.run_id}")
        if sha256_file(weights) != entry.sha256:
            raise MiltonError(
                f"{weights}: sha256 differs from the registry's; the adapter changed after registration, "
                "re-run evaluation"
            )

    def record_export(self, run_id: str, record: ExportRecord) -> Entry:
        """Append an export to the adapter's entry; an earlier export to the same path is replaced."""
        with self._changing() as data:
            entry = self._entry(data, run_id)
            entry.exports = [e for e in entry.exports if e.path != record.path] + [record]
            entry.updated_at = record.created_at
            return entry

    def mark_tainted(self, run_ids: dict[str, int], reason: str) -> list[Entry]:
        """Mark each adapter tainted (run id -> how many forgotten conversations it learned); returns them."""
        at = now_iso()
        with self._changing() as data:
            marked = []
            for run_id, count in run_ids.items():
                entry = self._entry(data, run_id)
                entry.tainted = Taint(reason=reason, at=at, conversations=count)
                entry.updated_at = at
                marked.append(entry)
            return marked

    def newest_untainted(self, exclude: str | None = None) -> Entry | None:
        """The newest adapter that is not tainted and has passed evaluation (or served before): where a
        tainted production can go back to."""
        data = self.load()
        fit = [
            e
            for e in data.newest_first()
            if e.tainted is None
            and e.run_id != exclude
            and (e.status == "candidate" or e.run_id in data.production_stack)
        ]
        return fit[0] if fit else None

    def archive(self, run_id: str, command: str, note: str | None = None) -> Entry:
        with self._changing() as data:
            entry = self._entry(data, run_id)
            if entry.status == "archived":
                raise MiltonError(f"{run_id} is already archived")
            self._move(entry, "archived", "archived by hand", command, note)
            return entry

    def rollback_target(self) -> tuple[Entry | None, Entry]:
        """(current production or None, the adapter a rollback would restore); raises if there is none."""
        return _rollback_plan(self.load())

    def rollback(self, max_lora_rank: int, command: str, note: str | None = None) -> tuple[Entry | None, Entry]:
        with self._changing() as data:
            current, target = _rollback_plan(data)
            self.check_servable(target, max_lora_rank)
            if current is not None:
                self._move(current, "archived", f"rolled back to {target.run_id}", command, note)
                data.production_stack.pop()
            came_from = current.run_id if current else "no production"
            self._move(target, "production", f"rollback from {came_from}", command, note)
            return current, target

    def _move(self, entry: Entry, to: Status, reason: str, command: str, note: str | None = None) -> None:
        at = now_iso()  # one instant: the transition's time is the entry's updated_at
        entry.history.append(Transition(at=at, from_status=entry.status, to_status=to, reason=reason,
                                        command=command, who=self.who, note=note))  # fmt: skip
        entry.status = to
        entry.updated_at = at


def _rollback_plan(data: RegistryFile) -> tuple[Entry | None, Entry]:
    current = data.production()
    stack = list(data.production_stack)
    if current is not None and stack and stack[-1] == current.run_id:
        stack.pop()
    candidates = [r for r in reversed(stack) if r in data.adapters and data.adapters[r].tainted is None]
    if not candidates:
        raise MiltonError("nothing to roll back to: no earlier untainted production adapter in the registry")
    return current, data.adapters[candidates[0]]
