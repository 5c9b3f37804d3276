"""`milton-lora redact --jsonl`: redact the `text` of one JSON object per line, other keys kept."""

from __future__ import annotations

import json
from collections import Counter

from milton_lora.errors import MiltonError
from milton_lora.redact.engine import Redactor


def redact_jsonl_lines(redactor: Redactor, lines: list[str], source: str) -> tuple[list[str], Counter[str]]:
    """Redact the `text` of each `{"text": ...}` line, keeping other keys and the order.

    Every line is parsed before any output is produced, so a bad line yields an error naming it and
    no partial output.
    """
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            message = f'{source}:{number}: not valid JSON ({exc.msg}); expected one {{"text": ...}} per line'
            raise MiltonError(message) from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise MiltonError(f'{source}:{number}: expected an object with a string "text" key')
        records.append(record)
    totals: Counter[str] = Counter()
    for record, result in zip(records, redactor.redact_many([r["text"] for r in records]), strict=True):
        record["text"] = result.text
        totals.update(result.counts)
    return [json.dumps(record, ensure_ascii=False) for record in records], totals
