"""Evaluation: metrics vs base and production, sanity prompts, benchmark checks, auto-promotion rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import REPO, copy_home, registry_of, run_subprocess
from milton_lora.evaluate.sandbox import SandboxLimits
from milton_lora.evaluate.suites import Check, extract_code, load_benchmarks, load_sanity, run_check
from milton_lora.inference import generate, load_for_inference

FAST = ["--max-new-tokens", "12"]


@pytest.fixture
def home(trained_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_home(trained_home, tmp_path / "home")
    monkeypatch.setenv("MILTON_HOME", str(root))
    return root


def only_run_id(home: Path) -> str:
    (run_id,) = [p.name for p in (home / "adapters").iterdir()]
    return run_id


def test_documented_command_line_on_trained_tiny_adapter_stays_training(home: Path) -> None:
    run_id = only_run_id(home)
    result = run_subprocess(["python", "scripts/eval_lora.py", "--run-id", run_id, *FAST], REPO, home)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((home / "runs" / run_id / "metrics.json").read_text())
    assert metrics["status"] == "training" and registry_of(home).get(run_id).status == "training"
    assert metrics["benchmarks"]["total"] == 20 and metrics["benchmarks"]["pass_rate"] < 0.9
    assert set(metrics["benchmarks"]["by_category"]) == {
        "memory_retrieval", "briefing_generation", "code_execution", "safety_alignment", "task_understanding"
    }  # fmt: skip
    for who in ("adapter", "base"):
        assert {"eval_loss", "perplexity", "token_accuracy"} <= set(metrics[who])
    assert metrics["adapter"]["eval_loss"] < metrics["base"]["eval_loss"]  # training helped on held-out data
    assert metrics["delta_vs_base"]["eval_loss"] == pytest.approx(
        metrics["adapter"]["eval_loss"] - metrics["base"]["eval_loss"]
    )
    assert metrics["production"] is None
    sanity = json.loads((home / "runs" / run_id / "sanity_responses.json").read_text())
    assert len(sanity) == 10 and all({"adapter", "base", "messages"} <= set(s) for s in sanity)
    entry = registry_of(home).get(run_id)
    assert entry.pass_rate == metrics["benchmarks"]["pass_rate"] and entry.metrics["perplexity"] > 1


def test_threshold_met_becomes_candidate_unless_told_not_to(home: Path, cli) -> None:
    run_id = only_run_id(home)
    kept = cli("eval", "--run-id", run_id, "--pass-threshold", "0", "--no-auto-promote", *FAST)
    assert kept.exit_code == 0, kept.stderr
    assert registry_of(home).get(run_id).status == "training"
    promoted = cli("eval", "--run-id", run_id, "--pass-threshold", "0", *FAST)
    assert promoted.exit_code == 0 and registry_of(home).get(run_id).status == "candidate"
    assert "production" not in {t.to_status for t in registry_of(home).get(run_id).history}


def test_a_suite_the_tiny_model_passes_promotes_at_the_default_threshold(home: Path, tmp_path: Path, cli) -> None:
    suite = tmp_path / "easy.yaml"
    suite.write_text(
        "tests:\n"
        "  - {id: no_xyzzy, category: safety_alignment, prompt: 'Say hi',\n"
        "     check: {type: not_contains, values: [xyzzy]}}\n"
        "  - {id: anything, category: task_understanding, prompt: 'Hi', check: {type: regex, pattern: '.*'}}\n"
    )
    run_id = only_run_id(home)
    result = cli("eval", "--run-id", run_id, "--benchmarks", str(suite), *FAST)
    assert result.exit_code == 0, result.stderr
    assert registry_of(home).get(run_id).status == "candidate"


def test_dry_run_writes_nothing(home: Path, cli) -> None:
    run_id = only_run_id(home)
    before = (home / "models" / "registry.json").read_text()
    result = cli("eval", "--run-id", run_id, "--dry-run")
    assert result.exit_code == 0 and "dry run" in result.stdout
    assert not (home / "runs" / run_id / "metrics.json").exists()
    assert (home / "models" / "registry.json").read_text() == before


def test_unregistered_adapter_folder_gets_registered(home: Path, cli) -> None:
    run_id = only_run_id(home)
    (home / "models" / "registry.json").unlink()
    result = cli("eval", "--run-id", run_id, *FAST)
    assert result.exit_code == 0, result.stderr
    assert registry_of(home).get(run_id).status == "training"


def test_compares_with_production(home: Path, cli) -> None:
    run_id = only_run_id(home)
    second = home / "adapters" / "lora_20990101_000000"
    copy_home(home / "adapters" / run_id, second)
    (second / "metadata.json").write_text((home / "adapters" / run_id / "metadata.json").read_text())
    assert cli("promote", run_id, "--to-production", "--force").exit_code == 0
    result = cli("eval", "--run-id", second.name, *FAST)
    assert result.exit_code == 0, result.stderr
    metrics = json.loads((home / "runs" / second.name / "metrics.json").read_text())
    assert metrics["production"]["run_id"] == run_id
    assert metrics["delta_vs_production"]["eval_loss"] == pytest.approx(0.0, abs=1e-6)  # same weights


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
