"""`--from-production`: start a run from the production adapter's weights and replay older conversations.

Decisions:
- The new adapter continues the production adapter (peft loads it as trainable), so it must be the same
  kind of adapter: the same base model (path and config sha256 as recorded) and the same LoRA rank,
  alpha and target modules; anything else is refused with both values named.
- Replayed conversations come from what production itself trained on: `runs/<production>/train.jsonl`
  (every run keeps the conversations it trained on, replay included, so earlier weeks stay reachable),
  else the train file its metadata names if that file still has the recorded sha256. Neither: an error.
- Older conversations that the new export already holds (the same conversation, or an earlier, shorter
  copy of one) are not replayed, nor any that is in the new held-out split.
- Production tainted (it learned a forgotten conversation) is never continued: refused with what to do.
- The replayed conversations' lineage comes from production's run (`train_lineage.json`, line for line);
  the new run inherits everything production learned.
- A preference run (`method: dpo | kto`) continuing an adapter (`plan_continuation`: production, or any run
  trained here) is checked the same way (registered, intact, not tainted, has its record) and replays nothing.
- `replay_fraction` x the new train conversations are drawn (seeded by the config's `seed`, kept in file
  order); fewer when fewer older ones are left.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from milton_lora.chat.conversations import Conversation, read_conversations
from milton_lora.config import TrainConfig
from milton_lora.errors import MiltonError
from milton_lora.fileio import sha256_file
from milton_lora.lineage import LineMap, Seen
from milton_lora.record import TrainingRecord, read_record
from milton_lora.registry import Entry, Registry
from milton_lora.settings import ADAPTER_CONFIG, ADAPTER_METADATA, RUN_TRAIN_DATA, RUN_TRAIN_LINEAGE


@dataclass(frozen=True)
class InitFromProduction:
    """The production adapter a run starts from, and the older conversations it replays."""

    run_id: str
    adapter_dir: Path
    adapter_sha256: str
    replay_fraction: float
    replay_source: Path | None  # None: a preference run, which replays nothing
    replay_pool: int
    replay: list[Conversation]
    replay_lineage: list[Seen]  # which conversation each replayed one is (empty when production's run lacks it)
    inherited: list[Seen]  # what production learned, inherited by the run that continues it
    run_dir: Path | None = None  # the run that trained the adapter continued

    def describe(self) -> str:
        if self.replay_source is None:
            return f"{self.run_id}'s weights (its frozen copy is the reference)"
        return (
            f"{self.run_id}'s weights; replaying {len(self.replay)} older conversations "
            f"(replay_fraction {self.replay_fraction:g}) from {self.replay_source}"
        )

    def record(self) -> dict[str, Any]:
        """What the new adapter's metadata.json records under `init_from` and `replay`."""
        start = {"run_id": self.run_id, "adapter_path": str(self.adapter_dir), "adapter_sha256": self.adapter_sha256}
        if self.replay_source is None:
            inherited = [s.model_dump() for s in self.inherited]
            return {"init_from": start, "continued": {"replay": [], "inherited": inherited}}
        return {
            "init_from": start,
            "replay": {
                "fraction": self.replay_fraction,
                "count": len(self.replay),
                "available": self.replay_pool,
                "source": str(self.replay_source),
                "source_sha256": sha256_file(self.replay_source),
            },
            "continued": {
                "replay": [s.model_dump() for s in self.replay_lineage],
                "inherited": [s.model_dump() for s in self.inherited],
            },
        }


def plan_from_production(registry: Registry, config: TrainConfig, base_model: Path, train_file: Path,
                         test_file: Path) -> InitFromProduction:  # fmt: skip
    """Check that production can be continued with this config and pick the conversations to replay."""
    production = registry.load().production()
    if production is None:
        raise MiltonError(
            "--from-production: no adapter is in production; train and promote one first (a cycle without "
            "--from-production)"
        )
    adapter_dir, record = _continuable(registry, production, "--from-production")
    _check_same_base(production.run_id, record, base_model)
    _check_same_lora(production.run_id, _read_json(adapter_dir / ADAPTER_CONFIG), config)
    source = replay_source(registry.run_dir(production.run_id), record, production.run_id)
    new_train = read_conversations(train_file)
    older = read_conversations(source)
    pool = older_only(older, new_train + read_conversations(test_file))
    wanted = min(round(config.replay_fraction * len(new_train)), len(pool))
    chosen = sorted(random.Random(config.seed).sample(range(len(pool)), wanted))
    lines = _line_map(source, len(older))
    line_of = {id(conversation): index for index, conversation in enumerate(older)}
    return InitFromProduction(
        run_id=production.run_id,
        adapter_dir=adapter_dir,
        adapter_sha256=production.sha256,
        replay_fraction=config.replay_fraction,
        replay_source=source,
        replay_pool=len(pool),
        replay=[pool[i] for i in chosen],
        replay_lineage=[lines[line_of[id(pool[i])]] for i in chosen] if lines else [],
        inherited=record.lineage.learned(),
    )


def plan_continuation(registry: Registry, name: str, flag: str) -> tuple[InitFromProduction, TrainingRecord]:
    """A preference run continuing adapter `name` (a run id, `production`, `latest`): checked as `--from-production`
    checks production (intact, not tainted, trained here); nothing is replayed. `flag` names the option in errors."""
    entry = registry.get(registry.resolve(name))
    adapter_dir, record = _continuable(registry, entry, flag)
    start = InitFromProduction(
        run_id=entry.run_id, adapter_dir=adapter_dir, adapter_sha256=entry.sha256, replay_fraction=0.0,
        replay_source=None, replay_pool=0, replay=[], replay_lineage=[], inherited=record.lineage.learned(),
        run_dir=registry.run_dir(entry.run_id),
    )  # fmt: skip
    return start, record


def _continuable(registry: Registry, entry: Entry, flag: str) -> tuple[Path, TrainingRecord]:
    """The adapter folder and record of an adapter a new run may start from."""
    if entry.tainted is not None:
        raise MiltonError(
            f"{flag}: {entry.run_id} is tainted ({entry.tainted.reason}); it learned forgotten conversations, so "
            f"nothing may continue it: train without {flag} (`milton-lora cycle` does so by itself)"
        )
    registry.check_integrity(entry)
    adapter_dir = registry.path_of(entry.adapter_path)
    record = read_record(adapter_dir)
    if record is None:
        raise MiltonError(
            f"{flag}: {adapter_dir / ADAPTER_METADATA} is missing; {entry.run_id} was not trained here, so it cannot "
            f"be continued: train without {flag}"
        )
    return adapter_dir, record


def _line_map(source: Path, count: int) -> list[Seen]:
    """Which conversation each line of the replay source is, when its run kept that (and it still matches)."""
    path = source.with_name(RUN_TRAIN_LINEAGE)
    if source.name != RUN_TRAIN_DATA or not path.exists():
        return []
    lines = LineMap.model_validate_json(path.read_text()).lines
    return lines if len(lines) == count else []


def replay_source(run_dir: Path, record: TrainingRecord, run_id: str) -> Path:
    """The conversations production trained on: its run's kept copy, else its recorded train file if unchanged."""
    kept = run_dir / RUN_TRAIN_DATA
    if kept.exists():
        return kept
    data = record.data
    recorded = Path(data.train_file) if data.train_file else None
    if recorded and recorded.exists() and sha256_file(recorded) == data.train_sha256:
        return recorded
    raise MiltonError(
        f"--from-production: the conversations production {run_id} trained on are gone ({kept} is missing and "
        f"{recorded or 'no train file is recorded'} has changed since); train without --from-production once, "
        "promote that adapter, and later runs can replay"
    )


def older_only(older: list[Conversation], new: list[Conversation]) -> list[Conversation]:
    """The older conversations the new ones do not already hold (the same one, or a grown copy of it)."""
    by_opening: dict[str, list[Conversation]] = {}
    for conversation in new:
        by_opening.setdefault(_opening(conversation), []).append(conversation)
    return [
        conversation
        for conversation in older
        if not any(other[: len(conversation)] == conversation for other in by_opening.get(_opening(conversation), []))
    ]


def _opening(conversation: Conversation) -> str:
    return json.dumps(conversation[:1], sort_keys=True)


def _check_same_base(run_id: str, record: TrainingRecord, base_model: Path) -> None:
    recorded = record.base_model
    if recorded is None or recorded.resolve() != base_model.resolve():
        raise MiltonError(
            f"--from-production: production {run_id} was trained on {recorded or 'an unrecorded base model'}, this "
            f"config trains on {base_model}; set base_model_path to the same model or train without --from-production"
        )
    config_file = base_model / "config.json"
    if record.base_model_config_sha256 not in (None, sha256_file(config_file)):
        raise MiltonError(
            f"--from-production: {config_file} has changed since production {run_id} was trained on it; "
            "train without --from-production"
        )


def _check_same_lora(run_id: str, adapter_config: dict[str, Any], config: TrainConfig) -> None:
    targets = sorted(adapter_config.get("target_modules") or [])
    theirs = (adapter_config.get("r"), adapter_config.get("lora_alpha"), targets)
    ours = (config.lora_r, config.lora_alpha, sorted(config.target_modules))
    if theirs != ours:
        raise MiltonError(
            f"--from-production: production {run_id} has lora_r {theirs[0]}, lora_alpha {theirs[1]}, target_modules "
            f"{theirs[2]}; this config has lora_r {ours[0]}, lora_alpha {ours[1]}, target_modules {ours[2]}; use "
            "the config production was trained with, or train without --from-production"
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise MiltonError(f"{path}: missing or not valid JSON; cannot continue the production adapter") from None
