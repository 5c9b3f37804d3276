"""Recording and writing an evaluation: the registry entry (registered if new, `training` → `candidate`
when the gate passes, never further), then `runs/<run_id>/metrics.json`, `sanity_responses.json` and
`judgements.jsonl`, each written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

from milton_lora.evaluate.plan import EvalPlan
from milton_lora.evaluate.result import (
    JUDGEMENTS_FILE,
    METRICS_FILE,
    SANITY_FILE,
    EvalResult,
    Judgement,
    SanityAnswer,
)
from milton_lora.fileio import atomic_write_text
from milton_lora.registry import Registry


def record_and_write(
    plan: EvalPlan, registry: Registry, result: EvalResult, sanity: list[SanityAnswer], judgements: list[Judgement]
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
    write_outputs(plan.run_dir, recorded, sanity, judgements)
    return recorded


def write_outputs(run_dir: Path, result: EvalResult, sanity: list[SanityAnswer], judgements: list[Judgement]) -> None:
    """The run's evaluation files; judgements of an earlier evaluation are removed when this one had no judge."""
    atomic_write_text(
        run_dir / SANITY_FILE, json.dumps([s.model_dump() for s in sanity], indent=2, ensure_ascii=False) + "\n"
    )
    if judgements:
        atomic_write_text(run_dir / JUDGEMENTS_FILE, "".join(j.model_dump_json() + "\n" for j in judgements))
    else:
        (run_dir / JUDGEMENTS_FILE).unlink(missing_ok=True)
    atomic_write_text(run_dir / METRICS_FILE, result.model_dump_json(indent=2) + "\n")
