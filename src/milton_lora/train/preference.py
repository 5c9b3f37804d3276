"""Preference training (`method: dpo | kto`): the export's `preferences.jsonl` through TRL's DPOTrainer or
KTOTrainer with LoRA.

Decisions:
- DPO trains on the train split's pairs (prompt, chosen, rejected); KTO on its thumbs labels plus every pair
  taken apart into a desirable and an undesirable completion. Both are TRL's conversational formats (the prompt
  as chat messages, each completion one assistant message), so TRL renders them with the model's chat template.
- The reference policy is the policy's own weights, never a second model: a run from new LoRA weights scores the
  reference with the adapter disabled (the base model); a run continuing an adapter (`init_from: production`,
  `--init-from RUN_ID`, the cycle's SFT adapter) gets TRL's frozen copy of that adapter's LoRA weights as its
  reference (a few MB), so preferences are learned relative to the SFT adapter they refine.
- Too few train preferences (`min_train_preferences`) is a safety check like too few conversations: the run is
  refused, naming the file and the counts.
- Rows are pairs (DPO) or completions (KTO), never packed; the schedule is sized to them as SFT's is to packed
  rows (`train/schedule.py`), and KTO keeps at least two rows per device batch (its KL estimate pairs each
  prompt with another row's completion). KTO's rows are shuffled once with the config's seed, since TRL reads
  them in order.
- The preferences trained on are kept in `runs/<run_id>/preferences.jsonl` with their conversations' lineage, so
  `--resume` trains on the same ones and the adapter's record says which conversations it learned from.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from milton_lora.chat.masks import encode
from milton_lora.chat.template import ChatFormat
from milton_lora.config import TrainConfig
from milton_lora.errors import MiltonError
from milton_lora.fileio import atomic_write_files, sha256_file
from milton_lora.lineage import ExportLineage, LineMap, Seen
from milton_lora.preferences import PreferenceLabel, PreferencePair, preference_line, read_preferences
from milton_lora.settings import (
    EXPORT_PREFERENCES,
    RUN_PREFERENCE_LINEAGE,
    RUN_TRAIN_DATA,
    RUN_TRAIN_LINEAGE,
    RUN_TRAIN_PREFERENCES,
)

Preference = PreferencePair | PreferenceLabel
SFT, DPO, KTO = "sft", "dpo", "kto"
KTO_MIN_BATCH = 2
TRL_HEAD = "trl-fused-head"  # TRL's own chunked log-probabilities of the completion tokens


@dataclass(frozen=True)
class PreferenceCounts:
    """What a `preferences.jsonl` holds, per split."""

    file: Path
    pairs: int
    labels: int
    desirable: int
    undesirable: int
    test_pairs: int
    test_labels: int

    def usable(self, method: str) -> int:
        """Train-split preferences the method learns from: pairs (DPO), labels and pairs (KTO)."""
        return self.pairs if method == DPO else self.pairs + self.labels

    def describe(self, method: str) -> str:
        kept = f"{self.pairs} pairs" + (f", {self.labels} labels ({self.desirable} up, {self.undesirable} down)"
                                        if method == KTO else "")  # fmt: skip
        held = f"{self.test_pairs} pairs" + (f", {self.test_labels} labels" if method == KTO else "")
        return f"{kept} / {held}"

    def record(self) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "sha256": sha256_file(self.file),
            "train_pairs": self.pairs,
            "train_labels": self.labels,
            "train_desirable": self.desirable,
            "train_undesirable": self.undesirable,
            "test_pairs": self.test_pairs,
            "test_labels": self.test_labels,
        }


def preferences_file(train_file: Path) -> Path:
    """The export's preferences, beside the train split the config names."""
    return train_file.parent / EXPORT_PREFERENCES


def count_preferences(path: Path) -> PreferenceCounts:
    found = read_preferences(path)
    train = [p for p in found if p.split == "train"]
    test = [p for p in found if p.split == "test"]
    labels = [p for p in train if isinstance(p, PreferenceLabel)]
    return PreferenceCounts(
        file=path,
        pairs=sum(isinstance(p, PreferencePair) for p in train),
        labels=len(labels),
        desirable=sum(p.desirable for p in labels),
        undesirable=sum(not p.desirable for p in labels),
        test_pairs=sum(isinstance(p, PreferencePair) for p in test),
        test_labels=sum(isinstance(p, PreferenceLabel) for p in test),
    )


def check_preferences(config: TrainConfig, train_file: Path, problems: list[str]) -> PreferenceCounts:
    """The preferences a dpo/kto run would learn from; too few (or none) is a problem for `make_plan`."""
    path = preferences_file(train_file)
    counts = count_preferences(path)
    what = "pairs" if config.method == DPO else "labels and pairs"
    if not path.exists():
        problems.append(f"{path}: not found; `milton-lora export` writes it (method: {config.method} learns from it)")
    elif counts.usable(config.method) < config.min_train_preferences:
        problems.append(
            f"{path}: {counts.usable(config.method)} train-split {what}, at least {config.min_train_preferences} "
            f"needed for method: {config.method} (min_train_preferences); regenerate or rate more replies, or "
            "export a wider window with --days"
        )
    return counts


@dataclass(frozen=True)
class PreparedPreferences:
    """The preferences a run learns from, as TRL's rows, with the tokenizer and their sizes."""

    tokenizer: Any
    train: list[Preference]  # the train split, as kept in the run folder
    rows: list[dict[str, Any]]
    test_rows: list[dict[str, Any]]
    input_tokens: int  # per epoch: every row's prompt and completion(s)
    completion_tokens: int
    too_long: int  # rows whose prompt alone fills max_seq_length (TRL drops them)

    @property
    def has_eval(self) -> bool:
        return bool(self.test_rows)


def prepare_preferences(config: TrainConfig, tokenizer: Any, export_file: Path, kept_file: Path,
                        resume: bool) -> PreparedPreferences:  # fmt: skip
    """The train split (a resumed run's kept copy), the held-out split, as TRL rows with their token counts."""
    every = [p for p in read_preferences(export_file) if learns_from(config.method, p)]
    train = read_preferences(kept_file) if resume and kept_file.exists() else [p for p in every if p.split == "train"]
    test = [p for p in every if p.split == "test"]
    rows, test_rows = trl_rows(config, train), trl_rows(config, test)
    if not rows:
        raise MiltonError(f"{export_file}: no train-split preferences for method: {config.method}")
    chat = ChatFormat.of(tokenizer)
    inputs = completions = too_long = 0
    for row in rows:
        prompt_length = len(encode(chat, row["prompt"] + [{"role": "assistant", "content": "-"}]).input_ids)
        too_long += prompt_length >= config.max_seq_length
        for key in ("chosen", "rejected", "completion"):
            if key in row:
                encoded = encode(chat, row["prompt"] + row[key], config.max_seq_length, last_turn_only=True)
                inputs += len(encoded.input_ids)
                completions += sum(label >= 0 for label in encoded.labels)
    return PreparedPreferences(tokenizer, train, rows, test_rows, inputs, completions, too_long)


def trl_rows(config: TrainConfig, preferences: list[Preference]) -> list[dict[str, Any]]:
    """TRL's conversational rows: DPO's {prompt, chosen, rejected}, KTO's {prompt, completion, label}."""
    rows: list[dict[str, Any]] = []
    for preference in preferences:
        prompt = [turn.model_dump() for turn in preference.prompt]
        if isinstance(preference, PreferencePair) and config.method == DPO:
            chosen, rejected = _reply(preference.chosen), _reply(preference.rejected)
            rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
        elif isinstance(preference, PreferencePair):
            rows.append({"prompt": prompt, "completion": _reply(preference.chosen), "label": True})
            rows.append({"prompt": prompt, "completion": _reply(preference.rejected), "label": False})
        elif config.method == KTO:
            rows.append({"prompt": prompt, "completion": _reply(preference.completion), "label": preference.desirable})
    if config.method == KTO:
        random.Random(config.seed).shuffle(rows)
    return rows


def _reply(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def preference_schedule_inputs(config: TrainConfig, prepared: PreparedPreferences) -> dict[str, Any]:
    """What `resolve_schedule` needs of a preference run: its rows and what one is."""
    return {
        "rows": len(prepared.rows),
        "input_tokens": prepared.input_tokens,
        "trained_tokens": prepared.completion_tokens,
        "has_eval": prepared.has_eval,
        "unit": "pairs" if config.method == DPO else "completions",
        "min_batch": KTO_MIN_BATCH if config.method == KTO else 1,
    }


def build_preference_trainer(config: TrainConfig, model: Any, prepared: PreparedPreferences, arguments: dict[str, Any],
                             peft_config: Any, callbacks: list[Any]) -> Any:  # fmt: skip
    """TRL's DPOTrainer or KTOTrainer on `model` (a peft model continuing an adapter, or the base with `peft_config`),
    with no reference model: TRL scores the reference with the start adapter's frozen copy, or adapters disabled."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

    settings = {"beta": config.beta, "precompute_ref_log_probs": False}
    if config.method == DPO:
        args, trainer_class = DPOConfig(**arguments, **settings), DPOTrainer
    else:
        args, trainer_class = KTOConfig(**arguments, **settings), KTOTrainer
    return trainer_class(
        model=model,
        ref_model=None,
        args=args,
        train_dataset=Dataset.from_list(prepared.rows),
        eval_dataset=Dataset.from_list(prepared.test_rows) if prepared.test_rows else None,
        processing_class=prepared.tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )


def learns_from(method: str, preference: Preference) -> bool:
    """DPO learns from pairs alone, KTO from labels and pairs."""
    return isinstance(preference, PreferencePair) or method == KTO


def keep_preferences(run_dir: Path, method: str, prepared: PreparedPreferences, export_file: Path,
                     export_lineage: ExportLineage, start_run_dir: Path | None, resume: bool) -> None:  # fmt: skip
    """Keep the train preferences and their conversations' lineage in the run folder; a run continuing an adapter
    also keeps that adapter's run's conversations (`train.jsonl`), which its weights hold, so a later
    `--from-production` run can still replay them."""
    kept = run_dir / RUN_TRAIN_PREFERENCES
    if resume and kept.exists():
        return
    every = read_preferences(export_file)
    recorded = [Seen.model_validate(item) for item in export_lineage.model_dump().get("preferences") or []]
    lines = [seen for p, seen in zip(every, recorded, strict=False) if p.split == "train" and learns_from(method, p)]
    if len(recorded) != len(every) or len(lines) != len(prepared.train):  # an export without preference lineage
        lines = []
    files = {
        kept: "".join(preference_line(p) + "\n" for p in prepared.train).encode(),
        run_dir / RUN_PREFERENCE_LINEAGE: LineMap(lines=lines).model_dump_json(indent=2).encode(),
    }
    if start_run_dir is not None and (start_run_dir / RUN_TRAIN_DATA).exists():
        inherited = (RUN_TRAIN_DATA, RUN_TRAIN_LINEAGE)
        files.update({run_dir / name: (start_run_dir / name).read_bytes() for name in inherited
                      if (start_run_dir / name).exists()})  # fmt: skip
    atomic_write_files(files)


def kept_preference_lineage(run_dir: Path) -> list[Seen]:
    path = run_dir / RUN_PREFERENCE_LINEAGE
    return LineMap.model_validate_json(path.read_text()).lines if path.exists() else []
