"""Lineage: which conversations a piece of data or an adapter holds, named by keyed hashes (never text).

A conversation is named by two HMACs under the home's secret (`MemoryStore.identity_hash` / `version_hash`):
its identity (`source:source_id`, stable across re-imports and grown copies) and its content version (the
turns as exported). An export records them per split, one per line, in line order; a run's kept train data
(`runs/<id>/train.jsonl`: the export's train split, then the replay) has them line for line next to it
(`runs/<id>/train_lineage.json`), which is how `memory forget` rewrites those files and how replay knows what
it draws. The adapter's `metadata.json` keeps its `lineage` as it was trained: what the weights learned.

Decisions:
- What an adapter learned is its `train` lines (replay included) plus everything its parent learned
  (`inherited`): continuing production's weights carries what they learned, so a forget taints the child
  too. The held-out `test` split is recorded (the run was evaluated on it) but not counted as learned.
- Hashes are keyed so that a leaked metadata.json cannot be checked against a guessed conversation.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# The `source` of a train line the export made from a conversation instead of copying it (`restate`: the person's
# stated facts restated by the assistant); it carries the lineage of the conversation it came from.
RESTATED = "restated"


def is_restated(line: dict[str, Any]) -> bool:
    """Whether an export line (`{"messages": [...]}`, parsed) is a restatement rather than a conversation."""
    return line.get("source") == RESTATED


class Seen(BaseModel):
    """One conversation as a file held it: its identity and the content version."""

    model_config = ConfigDict(extra="allow")  # a newer writer's keys survive a rewrite

    identity: str
    version: str


class ExportLineage(BaseModel):
    """What an export's `metadata.json` records: its splits' conversations, and the conversation of each line of
    `preferences.jsonl`, line for line (an export made before preferences has none)."""

    model_config = ConfigDict(extra="allow")  # a newer writer's keys survive a rewrite

    train: list[Seen] = Field(default_factory=list)
    test: list[Seen] = Field(default_factory=list)
    preferences: list[Seen] = Field(default_factory=list)


class Lineage(BaseModel):
    """What an adapter saw: the lines it trained on (the export's train split, then `replayed` replay lines),
    the held-out split it was measured on, and the production adapter it continued from with what that one
    learned."""

    model_config = ConfigDict(extra="allow")  # a newer writer's keys survive a rewrite

    export_created_at: str | None = None
    train: list[Seen] = Field(default_factory=list)
    replayed: int = 0
    test: list[Seen] = Field(default_factory=list)
    parent: str | None = None
    inherited: list[Seen] = Field(default_factory=list)

    def learned(self) -> list[Seen]:
        """Every conversation in the weights: its own lines, then its parent's (each identity once)."""
        seen: dict[str, Seen] = {}
        for item in [*self.train, *self.inherited]:
            seen.setdefault(item.identity, item)
        return list(seen.values())

    def learned_identities(self) -> set[str]:
        return {item.identity for item in self.learned()}

    def role_of(self, identity: str) -> str | None:
        """How this adapter met a conversation: trained, replayed, inherited, evaluated, or None."""
        own = len(self.train) - self.replayed
        for index, item in enumerate(self.train):
            if item.identity == identity:
                return "trained" if index < own else "replayed"
        if any(item.identity == identity for item in self.inherited):
            return f"inherited from {self.parent}"
        if any(item.identity == identity for item in self.test):
            return "evaluated"
        return None


class LineMap(BaseModel):
    """The conversation of each line of a kept data file (a run's `train.jsonl`), in line order."""

    model_config = ConfigDict(extra="allow")  # a newer writer's keys survive a rewrite

    lines: list[Seen] = Field(default_factory=list)


def keep_lines(lines: list[str], seen: list[Seen], forgotten: set[str]) -> tuple[list[str], list[Seen]] | None:
    """The lines (and their lineage) of a data file without the forgotten conversations' lines; None when the
    lineage does not cover the file line for line (a file made before lineage was recorded)."""
    if len(lines) != len(seen):
        return None
    kept = [(line, item) for line, item in zip(lines, seen, strict=True) if item.identity not in forgotten]
    return [line for line, _ in kept], [item for _, item in kept]
