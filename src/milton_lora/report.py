"""`runs/<run_id>/report.html`: one self-contained page about a run.

Loss curves (train and eval, read back from the TensorBoard event files) drawn as inline SVG with the
training health signals marked on them (from the adapter's metadata.json, or the health.json a run
stopped for a non-finite loss leaves), the held-out metrics against the base model and production,
benchmark results by category and per test, and the sanity answers next to the base model's. No
external files, scripts or fonts: it opens in any browser, offline, and can be mailed as is.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import Any

from milton_lora.errors import MiltonError
from milton_lora.fileio import atomic_write_text
from milton_lora.settings import ADAPTER_METADATA, RUN_HEALTH

_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.3rem .6rem;vertical-align:top}
th{background:#f5f5f5}.pass{color:#137333}.fail{color:#b3261e}.muted{color:#777}
.side{display:grid;grid-template-columns:1fr 1fr 1fr;gap:.5rem}.side div{background:#fafafa;padding:.4rem;
white-space:pre-wrap;border:1px solid #eee}svg{background:#fff;border:1px solid #ddd}
"""


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series in the run's TensorBoard logs: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not log_dir.exists():
        return {}
    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def line_chart(series: dict[str, list[tuple[int, float]]], title: str, width: int = 640, height: int = 280,
               markers: list[dict[str, Any]] | None = None) -> str:  # fmt: skip
    """An inline SVG line chart with axes labels; one polyline per series (non-finite values left out), and
    a dashed vertical line for each marker (`step`, `kind`, `message`: the training health signals)."""
    series = {name: [(s, v) for s, v in values if math.isfinite(v)] for name, values in series.items()}
    points = [p for values in series.values() for p in values]
    if not points:
        return f'<p class="muted">{escape(title)}: no data logged.</p>'
    markers = markers or []
    pad = 48
    steps = [p[0] for p in points] + [m["step"] for m in markers]
    x_lo, x_hi = min(steps), max(steps)
    y_lo, y_hi = min(p[1] for p in points), max(p[1] for p in points)
    x_span, y_span = (x_hi - x_lo) or 1, (y_hi - y_lo) or 1

    def xy(step: int, value: float) -> str:
        x = pad + (step - x_lo) / x_span * (width - 2 * pad)
        y = height - pad - (value - y_lo) / y_span * (height - 2 * pad)
        return f"{x:.1f},{y:.1f}"

    colors = ["#1a73e8", "#e8710a", "#137333", "#a142f4"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<text x="{pad}" y="20" font-size="14">{escape(title)}</text>',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#999"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#999"/>',
             f'<text x="{pad}" y="{height - pad + 18}" font-size="11">step {x_lo}</text>',
             f'<text x="{width - pad - 60}" y="{height - pad + 18}" font-size="11">step {x_hi}</text>',
             f'<text x="4" y="{pad + 4}" font-size="11">{y_hi:.4g}</text>',
             f'<text x="4" y="{height - pad}" font-size="11">{y_lo:.4g}</text>']  # fmt: skip
    for index, (name, values) in enumerate(series.items()):
        color = colors[index % len(colors)]
        coords = " ".join(xy(step, value) for step, value in values)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{coords}"/>')
        if len(values) == 1:
            cx, cy = xy(*values[0]).split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{color}"/>')
        parts.append(f'<text x="{width - pad - 110}" y="{pad + 16 * index}" font-size="12" fill="{color}">'
                     f"{escape(name)}</text>")  # fmt: skip
    parts += [_marker(m, xy(m["step"], y_hi).split(",")[0], pad, height) for m in markers]
    parts.append("</svg>")
    return "".join(parts)


_MARKER_STYLE = {"non_finite": ("#b3261e", "nan/inf"), "spike": ("#e8710a", "spike"),
                 "divergence": ("#b3261e", "diverging"), "overfitting": ("#a142f4", "overfitting from here"),
                 "plateau": ("#777", "no progress")}  # fmt: skip


def _marker(marker: dict[str, Any], x: str, pad: int, height: int) -> str:
    color, label = _MARKER_STYLE.get(marker["kind"], ("#777", marker["kind"]))
    return (f'<g class="marker {escape(marker["kind"])}"><title>{escape(marker["message"])}</title>'
            f'<line x1="{x}" y1="{pad}" x2="{x}" y2="{height - pad}" stroke="{color}" stroke-dasharray="4 3"/>'
            f'<text x="{x}" y="{pad - 4}" font-size="10" fill="{color}" text-anchor="middle">{label}</text>'
            "</g>")  # fmt: skip


def build_report(run_id: str, run_dir: Path, adapter_dir: Path, note: str | None = None) -> str:
    metrics_path = run_dir / "metrics.json"
    if not run_dir.exists():
        raise MiltonError(f"{run_dir}: no such run; train it first")
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else None
    sanity_path = run_dir / "sanity_responses.json"
    sanity = json.loads(sanity_path.read_text()) if sanity_path.exists() else []
    metadata_path = adapter_dir / ADAPTER_METADATA
    training = json.loads(metadata_path.read_text()) if metadata_path.exists() else {}
    health = training.get("health") or _read_json(run_dir / RUN_HEALTH) or {}
    scalars = read_scalars(run_dir / "logs")
    losses = {name: scalars[tag] for name, tag in (("train loss", "train/loss"), ("eval loss", "eval/loss"))
              if tag in scalars}  # fmt: skip
    noted = f'<p class="note"><b>Latest note:</b> {escape(note)}</p>' if note else ""
    body = [f"<h1>Milton LoRA run {escape(run_id)}</h1>", noted, _training_summary(training), _health(health),
            "<h2>Loss curves</h2>", line_chart(losses, "loss (assistant tokens)", markers=health.get("signals")),
            line_chart({"learning rate": scalars.get("train/learning_rate", [])}, "learning rate")]  # fmt: skip
    if metrics:
        body += [_metrics_table(metrics), _benchmarks(metrics["benchmarks"])]
    else:
        body.append(f'<p class="muted">Not evaluated yet: python scripts/eval_lora.py --run-id {escape(run_id)}</p>')
    body.append(_sanity(sanity))
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Milton LoRA {escape(run_id)}</title>'
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>")  # fmt: skip


def write_report(run_id: str, run_dir: Path, adapter_dir: Path, note: str | None = None) -> Path:
    path = run_dir / "report.html"
    atomic_write_text(path, build_report(run_id, run_dir, adapter_dir, note))
    return path


def _training_summary(training: dict[str, Any]) -> str:
    if not training:
        return '<p class="muted">No training metadata found.</p>'
    results, config = training.get("results", {}), training.get("config", {})
    rows = [("base model", training.get("base_model_path")), ("LoRA", f"r={config.get('lora_r')} "
            f"alpha={config.get('lora_alpha')}"), ("steps", results.get("global_steps")),
            ("final eval loss", results.get("final_eval_loss")), ("tokens/s", results.get("tokens_per_second")),
            ("trainable parameters", training.get("trainable_parameters"))]  # fmt: skip
    return _table(["", ""], [[escape(str(k)), escape(str(v))] for k, v in rows])


def _health(health: dict[str, Any]) -> str:
    """Training health: each signal with its advice; a stopped run also names its last good checkpoint."""
    if not health:
        return ""
    rows = [[escape(s["kind"].replace("_", " ")), str(s["step"]), escape(s["message"]), escape(s["advice"])]
            for s in health["signals"]]  # fmt: skip
    if not rows:
        return '<p class="pass">Training health: ok (no non-finite loss, spike, divergence, overfitting, plateau).</p>'
    stopped = ""
    if health["status"] == "stopped":
        stopped = (f'<p class="fail">Stopped: no adapter was written; last good checkpoint: '
                   f"{escape(str(health.get('last_good_checkpoint') or 'none'))}</p>")  # fmt: skip
    return "<h2>Training health</h2>" + stopped + _table(["signal", "step", "what", "what to change"], rows)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _metrics_table(metrics: dict[str, Any]) -> str:
    rows = []
    for label, key in (("adapter", "adapter"), ("base", "base"), ("production", "production")):
        m = metrics.get(key)
        if m:
            name = f"{label} {m.get('run_id', '')}".strip()
            rows.append([escape(name), f"{m['eval_loss']:.4f}", f"{m['perplexity']:.2f}", f"{m['token_accuracy']:.2%}"])
    return "<h2>Held-out metrics</h2>" + _table(["model", "eval loss", "perplexity", "token accuracy"], rows)


def _benchmarks(bench: dict[str, Any]) -> str:
    by_category = _table(["category", "passed", "pass rate"], [
        [escape(name), f"{g['passed']}/{g['total']}", f"{g['pass_rate']:.0%}"]
        for name, g in bench["by_category"].items()
    ])  # fmt: skip
    tests = _table(["test", "category", "check", "result", "answer"], [
        [escape(r["id"]), escape(r["category"]), escape(r["check"]),
         f'<span class="{"pass" if r["passed"] else "fail"}">{"pass" if r["passed"] else "fail"}</span> '
         f'<span class="muted">{escape(r["detail"])}</span>', escape(r["answer"][:300])]
        for r in bench["results"]
    ])  # fmt: skip
    return (
        f"<h2>Task benchmarks: {bench['passed']}/{bench['total']} ({bench['pass_rate']:.0%})</h2>{by_category}{tests}"
    )


def _sanity(sanity: list[dict[str, Any]]) -> str:
    if not sanity:
        return ""
    cards = []
    for item in sanity:
        prompt = item["messages"][-1]["content"]
        cards.append(f'<h3>{escape(item["id"])}</h3><div class="side"><div><b>prompt</b>\n{escape(prompt)}</div>'
                     f'<div><b>adapter</b>\n{escape(item["adapter"])}</div><div><b>base</b>\n{escape(item["base"])}'
                     "</div></div>")  # fmt: skip
    return "<h2>Sanity prompts: adapter vs base</h2>" + "".join(cards)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
