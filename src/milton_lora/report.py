"""`runs/<run_id>/report.html`: one self-contained page about a run.

Loss curves (train and eval, read back from the TensorBoard event files) drawn as inline SVG with the
training health signals marked on them (from the adapter's metadata.json, or the health.json a run
stopped for a non-finite loss leaves); from the evaluation (`evaluate/result.py` reads its files): the
gate's criteria, what to look at, the held-out metrics against the base model and production, benchmark
results of both sides by category and per test, "sounds like you" (style match per side and feature, a few
replies side by side), preference accuracy on the held-out preference pairs, degenerate answers, the
head-to-head with a few won and lost pairs side by side, and the sanity answers of both sides. No external
files, scripts or fonts: it opens in any browser, offline, and can be mailed as is.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import Any

from milton_lora.errors import MiltonError
from milton_lora.evaluate.result import (
    JUDGEMENTS_FILE,
    METRICS_FILE,
    SANITY_FILE,
    STYLE_FILE,
    Benchmarks,
    CheckOutcome,
    EvalResult,
    HeadToHead,
    Judgement,
    SanityAnswer,
    Style,
    StyleReply,
    read_judgements,
    read_result,
    read_sanity,
    read_style,
)
from milton_lora.fileio import atomic_write_text
from milton_lora.record import TrainingRecord, read_record
from milton_lora.settings import RUN_HEALTH

_EXAMPLES = 3  # won and lost pairs shown side by side
_REASON_CHARS = 400  # of each judge reply in the verdict table

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
                 "plateau": ("#777", "no progress"), "best": ("#137333", "best eval")}  # fmt: skip


def _marker(marker: dict[str, Any], x: str, pad: int, height: int) -> str:
    color, label = _MARKER_STYLE.get(marker["kind"], ("#777", marker["kind"]))
    return (f'<g class="marker {escape(marker["kind"])}"><title>{escape(marker["message"])}</title>'
            f'<line x1="{x}" y1="{pad}" x2="{x}" y2="{height - pad}" stroke="{color}" stroke-dasharray="4 3"/>'
            f'<text x="{x}" y="{pad - 4}" font-size="10" fill="{color}" text-anchor="middle">{label}</text>'
            "</g>")  # fmt: skip


def build_report(run_id: str, run_dir: Path, adapter_dir: Path, note: str | None = None,
                 taint: str | None = None) -> str:  # fmt: skip
    """The page; `taint` (why the registry marked the adapter tainted) is shown first, as a warning."""
    body = [f"<h1>Milton LoRA run {escape(run_id)}</h1>", *report_sections(run_id, run_dir, adapter_dir, note, taint)]
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Milton LoRA {escape(run_id)}</title>'
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>")  # fmt: skip


def report_sections(run_id: str, run_dir: Path, adapter_dir: Path, note: str | None = None,
                    taint: str | None = None, sanity: bool = True) -> list[str]:  # fmt: skip
    """The report's sections as HTML fragments (the report page and the dashboard's run page show them; the
    dashboard draws the sanity answers itself, with a third side, so it asks for them without `sanity`)."""
    if not run_dir.exists():
        raise MiltonError(f"{run_dir}: no such run; train it first")
    training = read_record(adapter_dir)
    health = run_health(training, run_dir)
    noted = f'<p class="note"><b>Latest note:</b> {escape(note)}</p>' if note else ""
    if taint:
        noted = f'<p class="note"><b>Tainted, cannot be promoted:</b> {escape(taint)}</p>' + noted
    body = [noted, _training_summary(training), _health(health), "<h2>Loss curves</h2>", loss_charts(run_dir, health)]
    return body + _evaluation(run_id, run_dir, sanity)


def run_health(training: TrainingRecord | None, run_dir: Path) -> dict[str, Any]:
    """The training health record: the adapter's, else the health.json a stopped run leaves, else empty."""
    return (training.health if training is not None else None) or _read_json(run_dir / RUN_HEALTH) or {}


def loss_charts(run_dir: Path, health: dict[str, Any]) -> str:
    """The loss chart (train and eval loss, the health signals and the best eval loss marked) and the learning
    rate chart, from the run's TensorBoard logs as they are now (a run in progress shows its curve so far)."""
    scalars = read_scalars(run_dir / "logs")
    losses = {name: scalars[tag] for name, tag in (("train loss", "train/loss"), ("eval loss", "eval/loss"))
              if tag in scalars}  # fmt: skip
    markers = [*(health.get("signals") or []), *best_eval_marker(scalars.get("eval/loss", []))]
    return line_chart(losses, "loss (assistant tokens)", markers=markers) + line_chart(
        {"learning rate": scalars.get("train/learning_rate", [])}, "learning rate"
    )


def best_eval_marker(eval_loss: list[tuple[int, float]]) -> list[dict[str, Any]]:
    """A marker at the lowest eval loss (the checkpoint worth keeping), when there are two evaluations or more."""
    finite = [(step, value) for step, value in eval_loss if math.isfinite(value)]
    if len(finite) < 2:
        return []
    step, value = min(finite, key=lambda point: point[1])
    return [{"step": step, "kind": "best", "message": f"lowest eval loss {value:.4f} at step {step}"}]


def write_report(run_id: str, run_dir: Path, adapter_dir: Path, note: str | None = None,
                 taint: str | None = None) -> Path:  # fmt: skip
    path = run_dir / "report.html"
    atomic_write_text(path, build_report(run_id, run_dir, adapter_dir, note, taint))
    return path


def _evaluation(run_id: str, run_dir: Path, with_sanity: bool) -> list[str]:
    """The evaluation's sections, or why there are none."""
    try:
        result = read_result(run_dir / METRICS_FILE)
        sanity = read_sanity(run_dir / SANITY_FILE)
        judgements = read_judgements(run_dir / JUDGEMENTS_FILE)
        styled = read_style(run_dir / STYLE_FILE)
    except MiltonError as exc:
        return [f'<p class="muted">{escape(str(exc))}</p>']
    if result is None:
        return [f'<p class="muted">Not evaluated yet: milton-lora eval --run-id {escape(run_id)}</p>']
    opponent = result.opponent.label
    sections = [_gate(result), _diagnosis(result), _metrics_table(result), _benchmarks(result.benchmarks, opponent)]
    if result.style is not None:
        sections.append(_style(result.style, styled))
    sections.append(_preferences(result))
    if result.head_to_head is not None:
        sections.append(_head_to_head(result.head_to_head, [j for j in judgements if j.source != "style"]))
    return [*sections, _sanity(sanity, opponent)] if with_sanity else sections


def _training_summary(training: TrainingRecord | None) -> str:
    if training is None:
        return '<p class="muted">No training metadata found.</p>'
    results = training.results
    rows = [("base model", training.base_model_path), ("LoRA", f"r={training.config_value('lora_r')} "
            f"alpha={training.config_value('lora_alpha')}"), ("steps", results.global_steps),
            ("method", training.method), ("held-out loss", results.final_eval_loss),
            ("base model's held-out loss", results.base_eval_loss),
            ("ended", results.stop_message), ("tokens/s", results.tokens_per_second),
            ("trainable parameters", training.trainable_parameters)]  # fmt: skip
    return table(["", ""], [[escape(str(k)), escape(str(v))] for k, v in rows])


def _health(health: dict[str, Any]) -> str:
    """Training health: each signal with its advice; a stopped run also names its last good checkpoint."""
    if not health:
        return ""
    rows = [[escape(s["kind"].replace("_", " ")), str(s["step"]), escape(s["message"]), escape(s["advice"])]
            for s in health["signals"]]  # fmt: skip
    if not rows:
        return (
            '<p class="pass">Training health: ok (no non-finite loss, spike, divergence, overfitting, plateau; '
            "held-out loss below the base model's).</p>"
        )
    stopped = ""
    if health["status"] == "stopped":
        stopped = (f'<p class="fail">Stopped: no adapter was written; last good checkpoint: '
                   f"{escape(str(health.get('last_good_checkpoint') or 'none'))}</p>")  # fmt: skip
    return "<h2>Training health</h2>" + stopped + table(["signal", "step", "what", "what to change"], rows)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _gate(result: EvalResult) -> str:
    rows = [[escape(c.name), escape(c.value), escape(c.required), verdict(c.passed)] for c in result.gate.criteria]
    status = f"<p>Status after evaluation: <b>{escape(result.status)}</b></p>"
    return "<h2>Gate: training → candidate</h2>" + table(["criterion", "value", "required", "verdict"], rows) + status


def _diagnosis(result: EvalResult) -> str:
    if not result.diagnosis:
        return ""
    items = "".join(
        f"<li><b>{escape(f.signal)}</b>: {escape(f.observed)}<br>likely: {escape('; '.join(f.causes))}"
        f"<ul>{''.join(f'<li>{escape(fix)}</li>' for fix in f.fixes)}</ul></li>"
        for f in result.diagnosis
    )
    return f"<h2>What to look at</h2><ul>{items}</ul>"


def _metrics_table(result: EvalResult) -> str:
    rows = [("adapter", result.adapter), ("base", result.base)]
    if result.production:
        rows.append((f"production {result.production.run_id}", result.production))
    cells = [[escape(name), number(m.eval_loss, ".4f"), number(m.perplexity, ".2f"), number(m.token_accuracy, ".2%")]
             for name, m in rows]  # fmt: skip
    return "<h2>Held-out metrics</h2>" + table(["model", "eval loss", "perplexity", "token accuracy"], cells)


def _preferences(result: EvalResult) -> str:
    """Preference accuracy per side on the held-out pairs, or that there were none."""
    found = result.preferences
    if found is None:
        return ('<h2>Held-out preferences</h2><p class="muted">No held-out preference pairs in the export '
                "(regenerated or edited replies, split test): not measured.</p>")  # fmt: skip
    sides = [("adapter", found.adapter), ("production", found.production), ("base", found.base)]
    rows = [[name, f"{side.accuracy:.0%}", f"{side.mean_margin:+.2f}", number(side.reward_accuracy, ".0%"),
             number(side.mean_reward_margin, "+.2f")] for name, side in sides if side is not None]  # fmt: skip
    return (
        f"<h2>Held-out preferences: {found.pairs} pairs</h2><p>How often each model finds the person's chosen reply "
        "more likely than the one they rejected (margin: the mean log-likelihood difference, nats); reward: how "
        f"often it gained more over the base model (DPO's implicit reward). From {escape(found.file)}.</p>"
        + table(["model", "accuracy", "mean margin", "reward accuracy", "mean reward margin"], rows)
    )


def _benchmarks(bench: Benchmarks, opponent: str) -> str:
    theirs = bench.opponent.by_category
    by_category = table(["category", "adapter", escape(opponent), ""], [
        [escape(name), f"{g.passed}/{g.total} ({g.pass_rate:.0%})",
         f"{theirs[name].passed}/{theirs[name].total} ({theirs[name].pass_rate:.0%})",
         '<span class="fail">below</span>' if g.pass_rate < theirs[name].pass_rate else ""]
        for name, g in bench.adapter.by_category.items()
    ])  # fmt: skip
    regressed = (f'<p class="fail">Passed with {escape(opponent)}, failing now: {escape(", ".join(bench.regressions))}'
                 "</p>" if bench.regressions else "")  # fmt: skip
    tests = table(["test", "category", "check", "adapter", escape(opponent)], [
        [escape(r.id), escape(r.category), escape(r.check), _check(r.adapter), _check(r.opponent)]
        for r in bench.results
    ])  # fmt: skip
    return (f"<h2>Task benchmarks: adapter {bench.adapter.passed}/{bench.adapter.total}, {escape(opponent)} "
            f"{bench.opponent.passed}/{bench.opponent.total}</h2>{by_category}{regressed}{tests}")  # fmt: skip


def _style(style: Style, replies: list[StyleReply]) -> str:
    """Style match per side and feature ("-": the feature does not count for that side), and a few replies."""
    sides = [("adapter", style.adapter)] + ([("production", style.production)] if style.production else [])
    sides += [("base", style.base), ("the person (held-out)", style.held_out)]
    names = list(dict.fromkeys(n for _, m in sides for n in m.features))
    rows = [["<b>style match</b>", "", *(f"<b>{m.score:.2f}</b>" for _, m in sides)]]
    for feature in names:
        shown = next(m.features[feature].profile for _, m in sides if feature in m.features)
        rows.append([escape(feature), escape(shown), *(
            f"{escape(m.features[feature].replies)} ({m.features[feature].score:.2f})" if feature in m.features else "-"
            for _, m in sides)])  # fmt: skip
    features = table(["feature", "the person", *(escape(name) for name, _ in sides)], rows)
    judged = ""
    if style.judged is not None:
        h = style.judged
        judged = (f"<p>Which sounds more like the person's assistant ({escape(h.judge_model)}, shown the person's "
                  f"replies as examples, both orders): adapter {h.wins} wins, {h.ties} ties, {h.losses} losses "
                  f"against {escape(h.opponent)}; win rate {h.win_rate:.0%} (95% CI {h.ci_low:.0%}-"
                  f"{h.ci_high:.0%}).</p>")  # fmt: skip
    cards = [f"<h3>{escape(r.id)}</h3>" + _side_by_side(r.messages, r.adapter, r.base, "base")
             for r in replies[:_EXAMPLES]]  # fmt: skip
    return (
        f"<h2>Sounds like you: style match on {style.prompts} held-out prompts</h2><p>Profile of "
        f"{style.profile.replies} kept assistant replies; 0-1, higher is closer.</p>{features}{judged}{''.join(cards)}"
    )


def _head_to_head(h: HeadToHead, judgements: list[Judgement]) -> str:
    summary = (f"<p>Judged by <b>{escape(h.judge_model)}</b>, {h.prompts} prompts, each in both orders: "
               f"{h.wins} wins, {h.ties} ties, {h.losses} losses; win rate <b>{h.win_rate:.0%}</b> (95% CI "
               f"{h.ci_low:.0%}-{h.ci_high:.0%}); {h.inconsistent} inconsistent, {h.unparsed} unparsed. Mean "
               f"answer length: adapter {h.mean_chars_adapter:.0f}, {escape(h.opponent)} "
               f"{h.mean_chars_opponent:.0f} characters.</p>")  # fmt: skip
    examples = []
    for outcome, title in (("win", "won"), ("loss", "lost")):
        picked = [j for j in judgements if j.outcome == outcome][:_EXAMPLES]
        examples += [f"<h3>{title}: {escape(j.id)}</h3>" + _side_by_side(j.messages, j.adapter, j.opponent, h.opponent)
                     for j in picked]  # fmt: skip
    shown = "".join(examples) or '<p class="muted">No pair was won or lost in both orders.</p>'
    return f"<h2>Head-to-head against {escape(h.opponent)}</h2>{summary}{shown}{_verdicts(judgements)}"


def _verdicts(judgements: list[Judgement]) -> str:
    """Every judged prompt: the outcome, each order's verdict and what the judge wrote (its reason)."""
    if not judgements:
        return ""
    orders = ("adapter first", "opponent first")  # verdicts[0] saw the adapter's answer first
    rows = [[escape(j.id), escape(j.outcome), escape(" / ".join(j.verdicts)),
             "<br>".join(f"{o}: {escape(raw[:_REASON_CHARS])}" for o, raw in zip(orders, j.raw, strict=False))]
            for j in judgements]  # fmt: skip
    return "<h3>Every verdict and its reason</h3>" + table(["prompt", "outcome", "verdicts", "the judge wrote"], rows)


def _sanity(sanity: list[SanityAnswer], opponent: str) -> str:
    if not sanity:
        return ""
    cards = [f"<h3>{escape(item.id)}</h3>" + _side_by_side(item.messages, item.adapter, item.opponent, opponent)
             for item in sanity]  # fmt: skip
    return f"<h2>Sanity prompts: adapter vs {escape(opponent)}</h2>" + "".join(cards)


def _side_by_side(messages: list[dict[str, str]], ours: str, theirs: str, opponent: str) -> str:
    prompt = messages[-1]["content"] if messages else ""
    return (f'<div class="side"><div><b>prompt</b>\n{escape(prompt)}</div><div><b>adapter</b>\n{escape(ours)}</div>'
            f"<div><b>{escape(opponent)}</b>\n{escape(theirs)}</div></div>")  # fmt: skip


def _check(outcome: CheckOutcome) -> str:
    detail = f'<span class="muted">{escape(outcome.detail)}</span>'
    return f"{verdict(outcome.passed)} {detail}<br>{escape(outcome.answer[:300])}"


def verdict(passed: bool) -> str:
    return f'<span class="{"pass" if passed else "fail"}">{"pass" if passed else "fail"}</span>'


def number(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table(header: list[str], rows: list[list[str]], row_attributes: list[str] | None = None, table_id: str = "") -> str:
    """An HTML table of ready cells; `row_attributes`: each body row's attributes (the dashboard filters on them)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    attributes = row_attributes or [""] * len(rows)
    body = "".join(f"<tr{' ' * bool(a)}{a}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
                   for row, a in zip(rows, attributes, strict=True))  # fmt: skip
    opening = f'<table id="{table_id}">' if table_id else "<table>"
    return f"{opening}<tr>{head}</tr>{body}</table>"
