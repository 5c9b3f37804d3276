"""Reading exported conversations (`train.jsonl` / `test.jsonl`: one `{"messages": [...]}` per line).

Errors name the file and line and say what shape is expected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from milton_lora.errors import MiltonError
from milton_lora.lineage import is_restated

ROLES = ("system", "user", "assistant")
Conversation = list[dict[str, str]]


def read_conversations(path: Path, restated: bool = True) -> list[Conversation]:
    """Read an exported JSONL file; errors name the file and line. `restated=False` leaves out the lines the
    export restated (`lineage.RESTATED`): what the person's assistant really said, without them."""
    if not path.exists():
        raise MiltonError(f"{path}: not found; run `milton-lora export --days 30` first")
    conversations = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MiltonError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        messages = record.get("messages") if isinstance(record, dict) else None
        if not isinstance(messages, list) or not all(_is_message(m) for m in messages):
            raise MiltonError(
                f'{path}:{number}: expected {{"messages": [{{"role": "system|user|assistant", "content": "..."}}]}}'
            )
        if restated or not is_restated(record):
            conversations.append([{"role": m["role"], "content": m["content"]} for m in messages])
    return conversations


def _is_message(message: Any) -> bool:
    return isinstance(message, dict) and message.get("role") in ROLES and isinstance(message.get("content"), str)
