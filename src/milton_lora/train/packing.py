"""Tokenized conversations as the SFT trainer sees them: packed into rows, and collated into batches.

With `packing: true` the rows are packed here, with TRL's own best-fit-decreasing `pack_dataset`, and TRL's
dataset preparation is skipped: TRL keeps only `input_ids` and `labels` when it packs, and a run that distils
its general replay (`general_replay_target: distribution`) needs a third column, DISTILLED, to travel with each
token. `DistilledCollator` adds that column to what TRL's collator makes of a batch, laid out as TRL lays out
the labels (one padding-free row, or padded rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from milton_lora.chat.masks import DISTILLED, TokenizedSplit

PACKING_STRATEGY = "bfd"


def trainer_dataset(split: TokenizedSplit, max_length: int, packing: bool) -> Any:
    """The split as a `datasets.Dataset` the trainer takes as is: packed rows of at most `max_length` tokens (with
    `seq_lengths`, which TRL's collator turns into per-conversation positions), or one row per conversation."""
    from datasets import Dataset

    dataset = Dataset.from_list(split.examples)
    if not packing:
        return dataset
    from trl.data_utils import pack_dataset

    return pack_dataset(dataset, max_length, strategy=PACKING_STRATEGY)


def packed_rows(split: TokenizedSplit, max_length: int) -> int:
    """Rows the packing makes of the split (packed on the lengths alone: the same rows, less to copy)."""
    lengths = TokenizedSplit([{"input_ids": e["input_ids"]} for e in split.examples], 0, 0)
    return len(trainer_dataset(lengths, max_length, packing=True))


@dataclass
class DistilledCollator:
    """TRL's collator, plus the DISTILLED column where the examples carry one."""

    inner: Any

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch
        from trl.trainer.utils import pad

        batch = self.inner(examples)
        if DISTILLED not in examples[0]:
            return batch
        marks = [torch.tensor(example[DISTILLED]) for example in examples]
        if self.inner.padding_free:
            marks = [torch.cat(marks)]
        batch[DISTILLED] = pad(marks, padding_value=0, padding_side="right",
                               pad_to_multiple_of=self.inner.pad_to_multiple_of)  # fmt: skip
        return batch
