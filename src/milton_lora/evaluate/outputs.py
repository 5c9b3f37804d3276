"""Recording and writing an evaluation: the registry entry (registered if new, `training` → `candidate`
when the gate passes, never further), then `runs/<run_id>/metrics.json`, `sanity_responses.json` and
`judgements.jsonl` and `style_replies.json`, each written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

from milton_lora.evaluate.plan import EvalPlan
from milton_lora.evaluate.result import (
    JUDGEMENTS_FILE,
    METRICS_FILE,
    SANITY_FILE,
    STYLE_FILE,
    EvalResult,
    Judgement,
    SanityAnswer,
    StyleReply,
)
from milton_lora.fileio import atomic_write_text
from milton_lora.registry import Registry


def record_and_write(
    plan: EvalPlan,
    registry: Registry,
    result: EvalResult,
    sanity: list[SanityAnswer],
    judgements: list[Judgement],
    style: list[StyleReply] | None = None,
) -> EvalResult:
    """Register the adapter if new, store the evaluation (promoting when the gate says so), write the files."""
    registry.register(plan.run_id, str(plan.base_model), plan.command)
    entry = registry.record_evaluation(
        plan.run_id,
        result.registry_metrics(),
        result.benchmarks.adapter.pass_rate,
        result.gate.promote,
        plan.command,
        reason=f"gate: {result.gate.summary()}",
    )
    recorded = result.model_copy(update={"status": entry.status})
    write_outputs(plan.run_dir, recorded, sanity, judgements, style or [])
    return recorded


def write_outputs(
    run_dir: Path, result: EvalResult, sanity: list[SanityAnswer], judgements: list[Judgement], style: list[StyleReply]
) -> None:
    """The run's evaluation files; judgements (style replies) of an earlier evaluation are removed when this one
    had no judge (measured no style)."""
    atomic_write_text(run_dir / SANITY_FILE, _json_list(sanity))
    if style:
        atomic_write_text(run_dir / STYLE_FILE, _json_list(style))
    else:
        (run_dir / STYLE_FILE).unlink(missing_ok=True)
    if judgements:
        atomic_write_text(run_dir / JUDGEMENTS_FILE, "".join(j.model_dump_json() + "\n" for j in judgements))
    else:
        (run_dir / JUDGEMENTS_FILE).unlink(missing_ok=True)
    atomic_write_text(run_dir / METRICS_FILE, result.model_dump_json(indent=2) + "\n")


def _json_list(items: list[SanityAnswer] | list[StyleReply]) -> str:
    return json.dumps([item.model_dump() for item in items], indent=2, ensure_ascii=False) + "\n"
