"""The whole loop: `make demo`'s pipeline (the documented command lines in order, on the tiny model), the
real-model demo's facts and suites, and the HTML report."""

from __future__ import annotations

import json
import socket
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from helpers import copy_home, run_subprocess
from milton_lora.errors import MiltonError


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.external += [v for k, v in attrs if k in ("src", "href") and v]


@pytest.mark.slow
def test_tiny_demo_runs_the_documented_workflow_end_to_end(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    result = run_subprocess(["python", "-m", "milton_lora", "--home", str(home), "demo", "--tiny", "--port", port],
                            tmp_path, None, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    documented_lines = ("scripts/export_training_data.py --days 30", "scripts/train_lora.py --config",
                  "scripts/eval_lora.py --run-id", "--to-production --force", "scripts/promote_adapter.py --rollback",
                  "server start", "server stop")  # fmt: skip
    for documented_line in documented_lines:
        assert documented_line in result.stdout
    assert "Proceed? [y/N]" not in result.stdout and "PROMOTE ADAPTER TO PRODUCTION" in result.stdout
    assert result.stdout.count("now answers `milton` with") == 2  # promotion of B and the rollback, hot
    registry = json.loads((home / "models/registry.json").read_text())
    statuses = sorted(e["status"] for e in registry["adapters"].values())
    assert statuses == ["archived", "production"]
    assert list(home.glob("runs/*/report.html"))
    assert (
        "[EMAIL]"
        in (home / "training/data/exported/train.jsonl").read_text()
        + (home / "training/data/exported/test.jsonl").read_text()
    )


def test_demo_facts_are_held_only_by_the_training_history(tmp_path: Path, cli) -> None:
    """What the real-model demo asks about is said in training conversations, never asked there verbatim,
    and its short suites are valid evaluation files."""
    from milton_lora.demo.samples import FACTS, write_demo_suites, write_sample_exports
    from milton_lora.evaluate.suites import load_benchmarks, load_sanity

    home = tmp_path / "home"
    samples = write_sample_exports(tmp_path / "samples")
    for path in samples.values():
        assert cli("--home", str(home), "memory", "import", str(path)).exit_code == 0
    assert cli("--home", str(home), "export", "--days", "30").exit_code == 0
    train = [json.loads(line)["messages"] for line in (home / "training/data/exported/train.jsonl").open()]
    said = " ".join(m["content"] for messages in train for m in messages if m["role"] == "assistant")
    everything = " ".join(path.read_text() for path in samples.values())
    for fact in FACTS:
        assert said.count(fact.answer) >= 3, fact.id
        assert fact.question.lower() not in everything.lower(), fact.id
    sanity, benchmarks = write_demo_suites(tmp_path / "eval")
    assert [p.id for p in load_sanity(sanity).prompts] == [f.id for f in FACTS]
    assert {t.check.values[0] for t in load_benchmarks(benchmarks).tests if t.check.values} == {f.answer for f in FACTS}


def test_demo_refuses_a_folder_that_is_not_a_demo_home(tmp_path: Path) -> None:
    from milton_lora.demo.run import prepare_home

    precious = tmp_path / "real"
    (precious / "memory").mkdir(parents=True)
    (precious / "memory" / "milton.db").write_text("my life")
    with pytest.raises(MiltonError, match="not a demo home"):
        prepare_home(precious)
    assert (precious / "memory" / "milton.db").read_text() == "my life"


def test_report_is_self_contained_with_plots_and_the_evaluation(trained_home: Path, tmp_path: Path, cli) -> None:
    from scripted_judge import ScriptedJudge

    home = copy_home(trained_home, tmp_path / "home")
    (run_id,) = [p.name for p in (home / "adapters").iterdir()]
    with ScriptedJudge("longer") as judge:
        evaluated = cli("--home", str(home), "eval", "--run-id", run_id, "--max-new-tokens", "8", "--judge-url",
                        judge.url, "--judge-model", judge.model, "--judge-prompts", "2")  # fmt: skip
    assert evaluated.exit_code == 0, evaluated.stderr
    result = cli("--home", str(home), "report", run_id)
    assert result.exit_code == 0, result.stderr
    html = (home / "runs" / run_id / "report.html").read_text()
    parser = Collector()
    parser.feed(html)
    assert parser.tags.count("svg") == 2 and "polyline" in parser.tags
    assert parser.external == []  # no external images, scripts or styles
    for piece in ("train loss", "eval loss", "Held-out metrics", "memory_retrieval", "Sanity prompts: adapter vs base",
                  "Gate: training → candidate", "benchmark pass rate", "Head-to-head against base",
                  "Judged by <b>scripted-judge</b>", run_id, "Sounds like you",
                  "style match", "the person (held-out)", "Which sounds more like the person"):  # fmt: skip
        assert piece in html
    findings = json.loads((home / "runs" / run_id / "metrics.json").read_text())["diagnosis"]
    assert ("What to look at" in html) == bool(findings) and all(escape(f["signal"]) in html for f in findings)
    lines = (home / "runs" / run_id / "judgements.jsonl").read_text().splitlines()
    styled = [j for j in map(json.loads, lines) if j["source"] == "style"]
    judgements = [j for j in map(json.loads, lines) if j["source"] != "style"]
    won_or_lost = [j for j in judgements if j["outcome"] in ("win", "loss")]
    shown = min(3, sum(j["outcome"] == "win" for j in judgements)) + min(
        3, sum(j["outcome"] == "loss" for j in judgements)
    )
    # the sanity prompts, the judge's examples, three style prompts
    assert styled and won_or_lost and html.count('class="side"') == 10 + shown + min(3, len(styled))


def test_report_of_an_older_metrics_file_says_to_re_evaluate(trained_home: Path, tmp_path: Path, cli) -> None:
    home = copy_home(trained_home, tmp_path / "home")
    (run_id,) = [p.name for p in (home / "adapters").iterdir()]
    (home / "runs" / run_id / "metrics.json").write_text(json.dumps({"run_id": run_id, "benchmarks": {}}))
    assert cli("--home", str(home), "report", run_id).exit_code == 0
    html = (home / "runs" / run_id / "report.html").read_text()
    assert "not in this version&#x27;s format; re-run milton-lora eval --run-id" in html


def test_usage_errors_are_one_clean_message(cli) -> None:
    for args in (["--bogus"], ["export", "--days", "x"], ["promote"]):
        result = cli(*args)
        assert result.exit_code in (1, 2) and "Traceback" not in result.stderr + result.stdout
