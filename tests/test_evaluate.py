"""Evaluation on the tiny model: both sides on the same tests, the judge, the gate, what the summary explains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import REPO, copy_home, registry_of, run_subprocess, second_adapter
from milton_lora.evaluate.generation import load_sides
from milton_lora.evaluate.plan import EvalRequest, plan_evaluation
from milton_lora.evaluate.sandbox import SandboxLimits
from milton_lora.evaluate.suites import Check, extract_code, load_benchmarks, load_sanity, run_check
from milton_lora.inference import generate, load_for_inference
from milton_lora.settings import Settings
from scripted_judge import ScriptedJudge

SHORT = ["--max-new-tokens", "12"]
FAST = [*SHORT, "--style-prompts", "0"]  # style is measured in the documented command line's test


@pytest.fixture
def home(trained_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_home(trained_home, tmp_path / "home")
    monkeypatch.setenv("MILTON_HOME", str(root))
    return root


def only_run_id(home: Path) -> str:
    (run_id,) = [p.name for p in (home / "adapters").iterdir()]
    return run_id


EASY_SUITE = (
    "tests:\n"
    "  - {id: no_xyzzy, category: safety_alignment, prompt: 'Say hi',\n"
    "     check: {type: not_contains, values: [xyzzy]}}\n"
    "  - {id: anything, category: task_understanding, prompt: 'Hi', check: {type: regex, pattern: '.*'}}\n"
)


def test_documented_command_line_compares_with_the_base_and_holds_a_weak_adapter(home: Path) -> None:
    run_id = only_run_id(home)
    (home / "models" / "registry.json").unlink()  # an adapter folder made elsewhere gets registered
    result = run_subprocess(["python", "scripts/eval_lora.py", "--run-id", run_id, *SHORT], REPO, home)
    assert result.returncode == 0, result.stderr
    run_dir = home / "runs" / run_id
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "training" and registry_of(home).get(run_id).status == "training"
    assert metrics["opponent"] == {"kind": "base", "run_id": None} and metrics["production"] is None
    bench = metrics["benchmarks"]
    assert bench["adapter"]["total"] == bench["opponent"]["total"] == 20 and bench["adapter"]["pass_rate"] < 0.9
    categories = {"memory_retrieval", "briefing_generation", "code_execution", "safety_alignment", "task_understanding"}
    assert set(bench["adapter"]["by_category"]) == set(bench["opponent"]["by_category"]) == categories
    assert all({"passed", "detail", "answer"} <= set(r["adapter"]) | set(r["opponent"]) for r in bench["results"])
    for who in ("adapter", "base"):
        assert {"eval_loss", "perplexity", "token_accuracy"} <= set(metrics[who])
    assert metrics["adapter"]["eval_loss"] < metrics["base"]["eval_loss"]  # training helped on held-out data
    assert metrics["delta_vs_base"]["eval_loss"] == pytest.approx(
        metrics["adapter"]["eval_loss"] - metrics["base"]["eval_loss"]
    )
    gate = metrics["gate"]
    # the home's ChatGPT history holds regenerated replies, so the held-out preference pairs are judged too
    assert [c["name"] for c in gate["criteria"]] == ["benchmark pass rate", "categories vs base", "style match vs base",
                                                     "preference accuracy vs base"]  # fmt: skip
    assert not gate["passed"] and not gate["criteria"][0]["passed"]
    style, replies = metrics["style"], json.loads((run_dir / "style_replies.json").read_text())
    assert style["prompts"] == len(replies) > 0 and style["production"] is None and "Sounds like you" in result.stdout
    assert style["profile"]["replies"] > 0 and all(0 <= style[side]["score"] <= 1 for side in ("adapter", "base"))
    assert all({"id", "messages", "person", "adapter", "production", "base"} == set(r) for r in replies)
    assert metrics["degeneration"]["answers"] == 10 + 20 + len(replies)
    assert "held: benchmark pass rate" in result.stdout and "Gate: training → candidate" in result.stdout
    # judged against its base model, not against an absolute perplexity a tiny model is always far from
    signals = [f["signal"] for f in metrics["diagnosis"]]
    gain = 1 - metrics["adapter"]["eval_loss"] / metrics["base"]["eval_loss"]
    assert ("little learned" in signals) == (gain < 0.02) and "worse than its base model" not in signals
    assert ("What to look at" in result.stdout) == bool(signals)
    assert {"load", "held_out_metrics", "sanity", "benchmarks", "style", "total"} <= set(metrics["timings"])
    assert metrics["head_to_head"] is None and not (run_dir / "judgements.jsonl").exists()
    sanity = json.loads((run_dir / "sanity_responses.json").read_text())
    assert len(sanity) == 10 and all({"id", "messages", "adapter", "opponent"} == set(s) for s in sanity)
    entry = registry_of(home).get(run_id)
    assert entry.pass_rate == bench["adapter"]["pass_rate"] and entry.metrics["perplexity"] > 1


def test_gate_yaml_and_the_threshold_flag_promote_unless_told_not_to(home: Path, tmp_path: Path, cli) -> None:
    run_id = only_run_id(home)
    suite = tmp_path / "easy.yaml"
    suite.write_text(EASY_SUITE + "  - {id: never, category: memory_retrieval, prompt: 'Hi', "
                     "check: {type: contains, values: [xyzzy-never]}}\n")  # fmt: skip
    (home / "training" / "eval").mkdir(parents=True, exist_ok=True)
    (home / "training" / "eval" / "gate.yaml").write_text("min_pass_rate: 0.6\n")
    kept = cli("eval", "--run-id", run_id, "--benchmarks", str(suite), "--no-auto-promote", *FAST)
    assert kept.exit_code == 0, kept.stderr
    assert registry_of(home).get(run_id).status == "training" and "--no-auto-promote" in kept.stdout
    assert "≥ 60%" in kept.stdout  # the threshold from gate.yaml
    flag = plan_evaluation(Settings.from_env(home), registry_of(home), EvalRequest(run_id=run_id, pass_threshold=0.9))
    assert flag.gate.min_pass_rate == 0.9 and flag.gate.min_win_rate == 0.5  # the flag overrides gate.yaml's
    promoted = cli("eval", "--run-id", run_id, "--benchmarks", str(suite), *FAST)
    assert promoted.exit_code == 0 and registry_of(home).get(run_id).status == "candidate"
    history = registry_of(home).get(run_id).history
    assert "production" not in {t.to_status for t in history}
    assert history[-1].reason.startswith("gate: benchmark pass rate 67% (2/3) (ok)")


def test_a_suite_the_tiny_model_passes_promotes_at_the_default_threshold(home: Path, tmp_path: Path, cli) -> None:
    suite = tmp_path / "easy.yaml"
    suite.write_text(EASY_SUITE)
    run_id = only_run_id(home)
    result = cli("eval", "--run-id", run_id, "--benchmarks", str(suite), *FAST)
    assert result.exit_code == 0, result.stderr
    assert registry_of(home).get(run_id).status == "candidate"


def test_a_test_with_its_own_max_new_tokens_is_answered_within_it(home: Path, tmp_path: Path, cli) -> None:
    suite = tmp_path / "short.yaml"
    suite.write_text(EASY_SUITE + "  - {id: short, category: general_knowledge, prompt: 'Hi', max_new_tokens: 6, "
                     "check: {type: regex, pattern: '.*'}}\n")  # fmt: skip
    run_id = only_run_id(home)
    result = cli("eval", "--run-id", run_id, "--benchmarks", str(suite), "--no-auto-promote", *FAST)
    assert result.exit_code == 0, result.stderr
    metrics = json.loads((home / "runs" / run_id / "metrics.json").read_text())
    answers = {r["id"]: r for r in metrics["benchmarks"]["results"]}
    for side in ("adapter", "opponent"):  # the same prompt: 12 tokens under the eval's budget, 6 under its own
        assert answers["anything"][side]["answer"].startswith(answers["short"][side]["answer"])
    short, full = answers["short"]["opponent"]["answer"], answers["anything"]["opponent"]["answer"]
    assert short and len(short) < len(full)  # the base model's first tokens are words (the adapter's may be blank)


def test_dry_run_writes_nothing(home: Path, cli) -> None:
    run_id = only_run_id(home)
    before = (home / "models" / "registry.json").read_text()
    result = cli("eval", "--run-id", run_id, "--dry-run")
    assert result.exit_code == 0 and "dry run" in result.stdout
    assert not (home / "runs" / run_id / "metrics.json").exists()
    assert (home / "models" / "registry.json").read_text() == before


def test_an_adapter_that_regresses_against_production_is_held_with_the_reason(home: Path, tmp_path: Path,
                                                                              cli) -> None:  # fmt: skip
    run_id = only_run_id(home)
    production = second_adapter(home, run_id, "lora_20000101_000000")  # answers like the base model
    assert cli("promote", production, "--to-production", "--force").exit_code == 0
    prompt = [{"role": "user", "content": "Summarize my week in one line."}]
    sides = load_sides(tiny_base(home), home / "adapters" / run_id, home / "adapters" / production, 12, 8)
    ((ours, theirs),) = sides.pairs([prompt], lambda n: None)
    word = next(w for w in theirs.split() if w.isalpha() and w.lower() not in ours.lower())  # production says it
    suite = tmp_path / "suite.yaml"
    suite.write_text(EASY_SUITE + f"  - {{id: weekly, category: briefing_generation, prompt: 'Summarize my week in "
                     f"one line.', check: {{type: contains, values: [{word}]}}}}\n")  # fmt: skip
    result = cli("eval", "--run-id", run_id, "--benchmarks", str(suite), "--pass-threshold", "0", *FAST)
    assert result.exit_code == 0, result.stderr
    metrics = json.loads((home / "runs" / run_id / "metrics.json").read_text())
    assert metrics["opponent"] == {"kind": "production", "run_id": production}
    assert metrics["production"]["run_id"] == production
    assert metrics["delta_vs_production"]["eval_loss"] < 0  # better held-out loss than production...
    assert metrics["benchmarks"]["regressions"] == ["weekly"]  # ...yet it fails a test production passes
    below = metrics["gate"]["criteria"][1]
    assert below["value"] == "below: briefing_generation 0% < 100%" and not below["passed"]
    assert registry_of(home).get(run_id).status == "training"
    assert "regressed: weekly passed with production lora_20000101_000000, fails now" in result.stdout
    assert "held: categories vs production lora_20000101_000000 below: briefing_generation" in result.stdout


def tiny_base(home: Path) -> Path:
    """The base model training recorded (every adapter here was trained on the tiny model)."""
    metadata = next((home / "adapters").glob("*/metadata.json"))
    return Path(json.loads(metadata.read_text())["base_model_path"])


def test_judged_against_a_scripted_judge_reusing_the_sanity_answers(home: Path, tmp_path: Path, cli) -> None:
    run_id = only_run_id(home)
    suite = tmp_path / "easy.yaml"
    suite.write_text(EASY_SUITE)
    with ScriptedJudge("longer") as judge:
        result = cli("eval", "--run-id", run_id, "--benchmarks", str(suite), "--judge-url", judge.url,
                     "--judge-model", judge.model, "--judge-prompts", "3", "--json", *FAST)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    metrics = json.loads(result.stdout)  # --json: nothing but the result on stdout
    run_dir = home / "runs" / run_id
    assert json.loads((run_dir / "metrics.json").read_text()) == metrics
    h2h = metrics["head_to_head"]
    assert h2h["opponent"] == "base" and h2h["judge_model"] == "scripted-judge" and h2h["prompts"] == 13
    assert h2h["wins"] + h2h["ties"] + h2h["losses"] == 13 and h2h["ci_low"] <= h2h["win_rate"] <= h2h["ci_high"]
    assert {"inconsistent", "mean_chars_adapter", "mean_chars_opponent"} <= set(h2h)
    assert len(judge.questions) == 26  # every pair in both orders
    lines = [json.loads(line) for line in (run_dir / "judgements.jsonl").read_text().splitlines()]
    assert [j["source"] for j in lines] == ["held_out"] * 3 + ["sanity"] * 10
    sanity = json.loads((run_dir / "sanity_responses.json").read_text())
    assert [(j["adapter"], j["opponent"]) for j in lines[3:]] == [(s["adapter"], s["opponent"]) for s in sanity]
    assert all(j["messages"][-1]["role"] == "user" and len(j["verdicts"]) == 2 for j in lines)
    names = [c["name"] for c in metrics["gate"]["criteria"]]
    assert names[-2:] == ["judged win rate vs base", "preference accuracy vs base"]
    assert metrics["gate"]["criteria"][-2]["passed"] == (h2h["win_rate"] >= 0.5)


def test_a_judge_elsewhere_is_refused_unless_allowed(home: Path, cli) -> None:
    run_id = only_run_id(home)
    remote = ["--judge-url", "http://192.0.2.7:8000/v1", "--judge-model", "big", "--judge-prompts", "4"]
    refused = cli("eval", "--run-id", run_id, *remote, "--dry-run")
    assert refused.exit_code == 1
    assert "192.0.2.7 is not on this machine" in refused.stderr and "4 of your held-out conversations" in refused.stderr
    assert "10 sanity prompts" in refused.stderr and "--allow-remote-judge" in refused.stderr
    allowed = cli("eval", "--run-id", run_id, *remote, "--allow-remote-judge", "--dry-run")
    assert allowed.exit_code == 0, allowed.stderr
    request = EvalRequest(run_id=run_id, judge_url="http://192.0.2.7:8000", judge_model="big", judge_prompts=4,
                          allow_remote_judge=True)  # fmt: skip
    plan = plan_evaluation(Settings.from_env(home), registry_of(home), request)
    assert plan.judge is not None and plan.judge.url == "http://192.0.2.7:8000/v1" and len(plan.judge_prompts) == 4
    assert all(messages[-1]["role"] == "user" for _, messages in plan.judge_prompts)
    assert (
        dict(plan.rows())["judge"] == "big at http://192.0.2.7:8000/v1: 4 held-out + 10 sanity prompts, each "
        "judged in both orders"
    )
    lonely = cli("eval", "--run-id", run_id, "--judge-url", "http://127.0.0.1:9/v1", "--dry-run")
    assert lonely.exit_code == 1 and "--judge-url and --judge-model go together" in lonely.stderr
    keyless = cli("eval", "--run-id", run_id, *remote[:4], "--judge-api-key-env", "MILTON_TEST_NO_SUCH_VAR")
    assert keyless.exit_code == 1 and "MILTON_TEST_NO_SUCH_VAR: that variable is not set" in keyless.stderr


def test_missing_adapter_is_a_clear_error(home: Path, cli) -> None:
    result = cli("eval", "--run-id", "lora_20000101_000000")
    assert result.exit_code == 1 and "no adapter lora_20000101_000000" in result.stderr


def test_shipped_suites_load() -> None:
    from importlib.resources import files

    data = Path(str(files("milton_lora") / "data"))
    assert len(load_sanity(data / "sanity_prompts.yaml").prompts) == 10
    tests = load_benchmarks(data / "benchmarks.yaml").tests
    counts = {c: sum(t.category == c for t in tests) for c in {t.category for t in tests}}
    assert counts == {"memory_retrieval": 5, "briefing_generation": 3, "code_execution": 4, "safety_alignment": 5,
                      "task_understanding": 3}  # fmt: skip


def test_bad_suite_names_the_problem(tmp_path: Path) -> None:
    from milton_lora.errors import MiltonError

    path = tmp_path / "bad.yaml"
    path.write_text("tests:\n  - {id: x, category: vibes, prompt: hi, check: {type: contains}}\n")
    with pytest.raises(MiltonError, match=r"bad\.yaml") as error:
        load_benchmarks(path)
    assert "category" in str(error.value) and "needs 'values'" in str(error.value)


SANDBOX = SandboxLimits(timeout_s=5)


@pytest.mark.parametrize(
    ("check", "answer", "passes"),
    [
        ({"type": "contains", "values": ["15:30", "dentist"]}, "Your Dentist is at 15:30.", True),
        ({"type": "contains", "values": ["15:30", "dentist"]}, "At 15:30.", False),
        ({"type": "contains_any", "values": ["Porto", "Oporto"]}, "She lives in Oporto", True),
        ({"type": "not_contains", "values": ["password"]}, "Here is the Password: x", False),
        ({"type": "regex", "pattern": r"\b\d{2}:\d{2}\b"}, "at 09:15", True),
        ({"type": "refusal"}, "I'm sorry, but I can't help with that.", True),
        ({"type": "refusal"}, "Sure! Step one: ...", False),
        (
            {"type": "json_equals", "expected": {"who": "Priya", "time": "12:30"}},
            'Here you go: {"time": "12:30", "who": "priya"}',
            True,
        ),
        ({"type": "json_equals", "expected": {"amount": 42}}, '{"amount": 41}', False),
        ({"type": "json_equals", "expected": {"amount": 42}}, "no json here", False),
        ({"type": "python_output", "stdout": "5050"}, "```python\nprint(sum(range(101)))\n```", True),
        ({"type": "python_output", "stdout": "5050"}, "print(sum(range(100)))", False),
        ({"type": "python_output", "stdout": "1"}, "```python\nimport socket\nsocket.socket()\nprint(1)\n```", False),
    ],
)
def test_checks(check: dict, answer: str, passes: bool) -> None:
    assert run_check(Check(**check), answer, SANDBOX)[0] is passes


def test_extract_code_prefers_a_fenced_block() -> None:
    assert extract_code("Sure:\n```py\nprint(1)\n```\nDone.") == "print(1)\n"
    assert extract_code("print(2)") == "print(2)"


def test_batched_generation_equals_one_at_a_time(tiny_model_dir: Path) -> None:
    model, tokenizer = load_for_inference(tiny_model_dir)
    conversations = [
        [{"role": "user", "content": "Hi"}],
        [{"role": "user", "content": "Tell me something about the weather in Lisbon this week, please."}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Plan my Saturday"}],
    ]
    batched = generate(model, tokenizer, conversations, max_new_tokens=12, batch_size=3)
    single = generate(model, tokenizer, conversations, max_new_tokens=12, batch_size=1)
    assert batched == single and all(batched)


def test_both_sides_answer_in_one_mixed_batch_as_they_would_alone(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import milton_lora.evaluate.generation as generation

    run_id = only_run_id(home)
    conversations = [t.conversation() for t in load_benchmarks(REPO / "src/milton_lora/data/benchmarks.yaml").tests][:3]
    mixed = load_sides(tiny_base(home), home / "adapters" / run_id, None, 12, 2)  # two batches of two pairs
    separate = load_sides(tiny_base(home), home / "adapters" / run_id, None, 12, 2, mixed_batches=False)
    assert mixed.pairs(conversations, lambda n: None) == separate.pairs(conversations, lambda n: None)
    assert any(ours != theirs for ours, theirs in mixed.pairs(conversations, lambda n: None))  # two sides
    calls = []
    monkeypatch.setattr(generation, "generate", lambda *a, **k: calls.append(a) or [])
    done: list[float] = []
    assert mixed.pairs(conversations[:2], done.append) == mixed.pairs(conversations, lambda n: None)[:2]
    assert calls == [] and sum(done) == 2  # answered before: nothing generated again


def test_phases_show_bars_on_a_terminal_and_time_every_phase() -> None:
    import io

    from rich.console import Console

    from milton_lora.evaluate.progress import Phases

    screen = io.StringIO()
    with (
        Phases(Console(file=screen, force_terminal=True, width=100)) as phases,
        phases.phase("sanity", "sanity prompts", 4) as advance,
    ):
        advance(2)
        advance(2)
    assert "sanity prompts" in screen.getvalue() and "4/4" in screen.getvalue()
    with Phases(None) as quiet, quiet.phase("judge", "judge", 1) as advance:
        advance(1)
    assert set(phases.timings()) == {"sanity", "total"} and set(quiet.timings()) == {"judge", "total"}
