"""Evaluate one adapter: held-out metrics (vs base and production), sanity prompts, task benchmarks.

Writes `runs/<run_id>/metrics.json` and `runs/<run_id>/sanity_responses.json` atomically, registers
the adapter if it is not yet in the registry, and moves it `training` → `candidate` when the pass
rate reaches the threshold (never further).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from milton_lora import __version__
from milton_lora.chat.conversations import read_conversations
from milton_lora.chat.masks import tokenize_split
from milton_lora.errors import MiltonError
from milton_lora.evaluate.metrics import masked_lm_metrics
from milton_lora.evaluate.sandbox import SandboxLimits
from milton_lora.evaluate.suites import BenchmarkFile, SanityFile, run_check
from milton_lora.fileio import atomic_write_json, sha256_file
from milton_lora.inference import generate, load_for_inference
from milton_lora.registry import Registry
from milton_lora.settings import ADAPTER_CONFIG, ADAPTER_METADATA, ADAPTER_WEIGHTS


@dataclass
class EvalPlan:
    run_id: str
    adapter_dir: Path
    run_dir: Path
    base_model: Path
    test_file: Path
    sanity_path: Path
    benchmarks_path: Path
    sanity: SanityFile
    benchmarks: BenchmarkFile
    production_dir: Path | None
    production_id: str | None
    pass_threshold: float
    auto_promote: bool
    max_new_tokens: int
    max_seq_length: int
    batch_size: int
    sandbox: SandboxLimits = field(default_factory=SandboxLimits)

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("adapter", f"{self.run_id} ({self.adapter_dir})"),
            ("base model", str(self.base_model)),
            ("held-out split", f"{self.test_file} ({len(read_conversations(self.test_file))} conversations)"),
            ("compared with", "base" + (f" and production {self.production_id}" if self.production_id else "")),
            ("sanity prompts", f"{len(self.sanity.prompts)} from {self.sanity_path}"),
            ("benchmarks", f"{len(self.benchmarks.tests)} tests from {self.benchmarks_path}"),
            (
                "promotion",
                f"training → candidate at pass rate ≥ {self.pass_threshold:.0%}"
                if self.auto_promote
                else "off (--no-auto-promote)",
            ),
            ("outputs", f"{self.run_dir / 'metrics.json'}, {self.run_dir / 'sanity_responses.json'}"),
        ]


def training_record(adapter_dir: Path) -> dict[str, Any]:
    """The adapter's metadata.json as training wrote it ({} for an adapter made elsewhere)."""
    path = adapter_dir / ADAPTER_METADATA
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except json.JSONDecodeError:
        raise MiltonError(f"{path}: not valid JSON; restore it or remove it and pass --base-model") from None


def base_model_of(adapter_dir: Path, record: dict[str, Any]) -> Path:
    """The base model recorded by training, else by peft (adapter_config.json)."""
    if record.get("base_model_path"):
        return Path(record["base_model_path"])
    recorded = json.loads((adapter_dir / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    if not recorded:
        raise MiltonError(f"{adapter_dir}: no base model recorded; pass --base-model")
    return Path(recorded)


def test_file_of(record: dict[str, Any], default: Path) -> Path:
    """The held-out split training used, when it is still there; else the current export's."""
    recorded = record.get("data", {}).get("test_file")
    return Path(recorded) if recorded and Path(recorded).exists() else default


def max_length_of(record: dict[str, Any]) -> int:
    """Score conversations truncated as training truncated them."""
    return int(record.get("config", {}).get("max_seq_length", 2048))


def check_adapter_files(adapter_dir: Path, run_id: str) -> None:
    missing = [name for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS) if not (adapter_dir / name).exists()]
    if missing:
        raise MiltonError(
            f"{adapter_dir}: no adapter {run_id} here (missing {', '.join(missing)}); list runs with --list"
        )


def evaluate_adapter(plan: EvalPlan, registry: Registry, command: str) -> dict[str, Any]:
    """Run everything in the plan; returns the metrics.json content."""
    started = time.time()
    from peft import PeftModel

    base, tokenizer = load_for_inference(plan.base_model)
    model = PeftModel.from_pretrained(base, str(plan.adapter_dir), adapter_name="candidate").eval()
    if plan.production_dir is not None:
        model.load_adapter(str(plan.production_dir), adapter_name="production")

    split = tokenize_split(tokenizer, read_conversations(plan.test_file), plan.max_seq_length)

    def lm_metrics() -> dict[str, float]:
        return masked_lm_metrics(model, split.examples, tokenizer.pad_token_id, plan.batch_size).as_dict()

    def answers(conversations: list[list[dict[str, str]]]) -> list[str]:
        return generate(model, tokenizer, conversations, plan.max_new_tokens, plan.batch_size)

    model.set_adapter("candidate")
    adapter_metrics = lm_metrics()
    sanity_conversations = [p.conversation() for p in plan.sanity.prompts]
    adapter_sanity = answers(sanity_conversations)
    bench_answers = answers([t.conversation() for t in plan.benchmarks.tests])
    with model.disable_adapter():
        base_metrics = lm_metrics()
        base_sanity = answers(sanity_conversations)
    production_metrics = None
    if plan.production_dir is not None:
        model.set_adapter("production")
        production_metrics = lm_metrics()

    results = [
        {"id": t.id, "category": t.category, "check": t.check.type, "passed": passed, "detail": detail,
         "answer": answer}
        for t, answer in zip(plan.benchmarks.tests, bench_answers, strict=True)
        for passed, detail in [run_check(t.check, answer, plan.sandbox)]
    ]  # fmt: skip
    pass_rate = sum(r["passed"] for r in results) / len(results)
    metrics = {
        "run_id": plan.run_id,
        "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tool_version": __version__,
        "adapter_sha256": sha256_file(plan.adapter_dir / ADAPTER_WEIGHTS),
        "test_file": str(plan.test_file),
        "test_file_sha256": sha256_file(plan.test_file),
        "test_conversations": len(split.examples),
        "adapter": adapter_metrics,
        "base": base_metrics,
        "production": production_metrics and {"run_id": plan.production_id, **production_metrics},
        "delta_vs_base": _delta(adapter_metrics, base_metrics),
        "delta_vs_production": production_metrics and _delta(adapter_metrics, production_metrics),
        "benchmarks": {
            "pass_rate": pass_rate,
            "passed": sum(r["passed"] for r in results),
            "total": len(results),
            "by_category": _by_category(results),
            "results": results,
        },
        "pass_threshold": plan.pass_threshold,
        "timings": {"seconds": round(time.time() - started, 2)},
    }
    sanity = [
        {"id": p.id, "messages": c, "adapter": a, "base": b}
        for p, c, a, b in zip(plan.sanity.prompts, sanity_conversations, adapter_sanity, base_sanity, strict=True)
    ]
    promote = plan.auto_promote and pass_rate >= plan.pass_threshold
    registry.register(plan.run_id, str(plan.base_model), command)
    entry = registry.record_evaluation(plan.run_id, _summary(adapter_metrics), pass_rate, promote, command)
    metrics["status"] = entry.status
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(plan.run_dir / "sanity_responses.json", sanity)
    atomic_write_json(plan.run_dir / "metrics.json", metrics)
    return metrics


# What the registry stores and the deltas compare.
_HEADLINE_METRICS = ("eval_loss", "perplexity", "token_accuracy")


def _summary(metrics: dict[str, float]) -> dict[str, float | None]:
    return {key: metrics[key] for key in _HEADLINE_METRICS}


def _delta(ours: dict[str, float], other: dict[str, float]) -> dict[str, float]:
    return {key: ours[key] - other[key] for key in _HEADLINE_METRICS}


def _by_category(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for result in results:
        groups[result["category"]].append(result["passed"])
    return {name: {"passed": sum(v), "total": len(v), "pass_rate": sum(v) / len(v)} for name, v in groups.items()}
