"""The shape of `preferences.jsonl`, the export's preference signals (one owner: written by `export`, read by
training's `method: dpo | kto` and by evaluation's preference accuracy).

Each line is one JSON object, either
- a **pair** (`kind: "pair"`): the chat up to and including the user turn being answered (`prompt`, as chat
  messages), the reply the person kept or wrote (`chosen`) and the one they did not (`rejected`); `source`
  says where the pair came from: `regenerated` (ChatGPT kept one sibling reply over another) or `edited`
  (the person edited a reply into what they wanted);
- a **label** (`kind: "label"`): an unpaired judgement of one reply (`completion`, `desirable`) from a
  thumbs up / down (`source: "feedback"`).

`split` is the conversation's side of the export's conversation-level 80/20 split (`train` or `test`), so the
held-out preferences come from the same conversations as the held-out chats.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from milton_lora.errors import MiltonError


class PromptTurn(BaseModel):
    """One message of a preference's prompt."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class PreferencePair(BaseModel):
    """A reply the person preferred over another to the same prompt."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["pair"] = "pair"
    split: Literal["train", "test"]
    source: Literal["regenerated", "edited"]
    prompt: list[PromptTurn] = Field(min_length=1)
    chosen: str = Field(min_length=1)
    rejected: str = Field(min_length=1)


class PreferenceLabel(BaseModel):
    """One reply the person marked as wanted (`desirable`) or not."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["label"] = "label"
    split: Literal["train", "test"]
    source: Literal["feedback"] = "feedback"
    prompt: list[PromptTurn] = Field(min_length=1)
    completion: str = Field(min_length=1)
    desirable: bool


Preference = Annotated[PreferencePair | PreferenceLabel, Field(discriminator="kind")]
_ONE = TypeAdapter(Preference)


def preference_line(preference: PreferencePair | PreferenceLabel) -> str:
    """The JSONL line of one preference (no trailing newline)."""
    return json.dumps(preference.model_dump(mode="json"), ensure_ascii=False)


def read_preferences(path: Path) -> list[PreferencePair | PreferenceLabel]:
    """Every preference of `path`, in file order; a missing file holds none. A bad line is a one-line error
    naming the file, the line and the key at fault."""
    if not path.exists():
        return []
    found: list[PreferencePair | PreferenceLabel] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                found.append(_ONE.validate_json(line))
            except ValidationError as error:
                problem = error.errors()[0]
                where = ".".join(str(part) for part in problem["loc"]) or "the line"
                raise MiltonError(
                    f"{path}:{number}: {where}: {problem['msg']}; re-run `milton-lora export` to rewrite the file"
                ) from None
    return found
