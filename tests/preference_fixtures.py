"""`preferences.jsonl` files in the export's shape (`milton_lora.preferences`), for training and evaluation tests:
the person's replies (short, signed off) chosen over a generic assistant's, and thumbs on either kind."""

from __future__ import annotations

from pathlib import Path

from milton_lora.preferences import PreferenceLabel, PreferencePair, PromptTurn, preference_line
from milton_lora.settings import EXPORT_PREFERENCES

TOPICS = ["coffee", "trains", "the dog", "the garden", "a window seat", "the weekly sync", "rain", "a recipe",
          "the budget", "a birthday", "the bike", "a book"]  # fmt: skip


def prompt_about(topic: str) -> list[PromptTurn]:
    return [PromptTurn(role="user", content=f"What should I do about {topic}?")]


def person_reply(topic: str) -> str:
    return f"Alright — keep {topic} simple today.\n— Milton"


def generic_reply(topic: str) -> str:
    """About as long as the person's: the pair differs in style, not in length."""
    return f"Sure! Here are some thoughts on {topic} for you."


def topic(index: int) -> str:
    """A different topic for every index (the list, then numbered rounds of it)."""
    rounds = index // len(TOPICS)
    return TOPICS[index % len(TOPICS)] + (f" (round {rounds + 1})" if rounds else "")


def preference_pairs(count: int, split: str, start: int = 0) -> list[PreferencePair]:
    return [
        PreferencePair(split=split, source="regenerated" if i % 2 else "edited", prompt=prompt_about(topic(i)),
                       chosen=person_reply(topic(i)), rejected=generic_reply(topic(i)))
        for i in range(start, start + count)
    ]  # fmt: skip


def preference_labels(count: int, split: str, start: int = 0) -> list[PreferenceLabel]:
    return [
        PreferenceLabel(split=split, prompt=prompt_about(topic(i)), desirable=i % 2 == 0,
                        completion=person_reply(topic(i)) if i % 2 == 0 else generic_reply(topic(i)))
        for i in range(start, start + count)
    ]  # fmt: skip


def write_preferences(export_dir: Path, train_pairs: int, test_pairs: int, train_labels: int = 0,
                      test_labels: int = 0) -> Path:  # fmt: skip
    """The export's preferences.jsonl with that many of each."""
    found = [*preference_pairs(train_pairs, "train"), *preference_pairs(test_pairs, "test", start=train_pairs),
             *preference_labels(train_labels, "train"),
             *preference_labels(test_labels, "test", start=train_labels)]  # fmt: skip
    path = export_dir / EXPORT_PREFERENCES
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(preference_line(p) + "\n" for p in found))
    return path
