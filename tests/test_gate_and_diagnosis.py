"""The promotion gate (criteria, gate.yaml) and the evaluation's diagnosis (little learned, worse than base,
degenerate answers, one direction for all of them), on results built from real benchmark outcomes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from milton_lora.errors import MiltonError
from milton_lora.evaluate.diagnosis import TrainingFacts, diagnose, is_echo, is_empty, is_repetitive
from milton_lora.evaluate.gate import DiagnosisThresholds, GateConfig, decide, load_gate
from milton_lora.evaluate.judge import head_to_head
from milton_lora.evaluate.result import BenchmarkResult, CheckOutcome, Judgement, Opponent, SanityAnswer, Scores
from milton_lora.evaluate.scoring import side_totals

PRODUCTION = Opponent(kind="production", run_id="lora_20250101_000000")


def benchmarks(outcomes: list[tuple[str, bool, bool]]):  # (category, adapter passed, opponent passed)
    from milton_lora.evaluate.result import Benchmarks

    def checked(passed: bool) -> CheckOutcome:
        return CheckOutcome(passed=passed, detail="", answer="")

    results = [BenchmarkResult(id=f"t{i}", category=c, check="contains", adapter=checked(a), opponent=checked(o))
               for i, (c, a, o) in enumerate(outcomes)]  # fmt: skip
    return Benchmarks(adapter=side_totals([(r.category, r.adapter.passed) for r in results]),
                      opponent=side_totals([(r.category, r.opponent.passed) for r in results]), results=results,
                      regressions=[r.id for r in results if r.opponent.passed and not r.adapter.passed],
                      improvements=[])  # fmt: skip


def judged(outcomes: list[str]):
    return head_to_head([Judgement(id=str(i), source="sanity", messages=[], adapter="a", opponent="b",
                                   verdicts=["tie", "tie"], raw=["", ""], outcome=o)  # type: ignore[arg-type]
                         for i, o in enumerate(outcomes)], PRODUCTION.label, "judge")  # fmt: skip


def test_an_adapter_at_least_as_good_everywhere_passes() -> None:
    bench = benchmarks(
        [("memory_retrieval", True, True), ("memory_retrieval", True, False), ("code_execution", True, True)]
    )
    decision = decide(GateConfig(), bench, judged(["win", "win", "tie"]), PRODUCTION, auto_promote=True)
    assert decision.passed and decision.promote
    assert [c.name for c in decision.criteria] == ["benchmark pass rate", f"categories vs {PRODUCTION.label}",
                                                   f"judged win rate vs {PRODUCTION.label}"]  # fmt: skip
    assert decision.criteria[0].value == "100% (3/3)" and decision.criteria[2].value.startswith("83% (95% CI")


def test_a_category_below_production_holds_the_adapter_even_at_a_high_pass_rate() -> None:
    bench = benchmarks([("memory_retrieval", True, True)] * 9 + [("code_execution", False, True)])
    decision = decide(GateConfig(), bench, None, PRODUCTION, auto_promote=True)
    assert bench.adapter.pass_rate == pytest.approx(0.9) and bench.regressions == ["t9"]
    assert not decision.passed and not decision.promote
    (failed,) = decision.failed()
    assert failed.value == "below: code_execution 0% < 100%" and "code_execution" in decision.summary()


def test_a_lost_head_to_head_holds_the_adapter() -> None:
    bench = benchmarks([("memory_retrieval", True, True)])
    decision = decide(GateConfig(), bench, judged(["loss", "loss", "tie", "win"]), PRODUCTION, auto_promote=True)
    assert [c.passed for c in decision.criteria] == [True, True, False]


def test_without_auto_promote_a_passing_gate_promotes_nothing() -> None:
    decision = decide(GateConfig(), benchmarks([("memory_retrieval", True, False)]), None, PRODUCTION, False)
    assert decision.passed and not decision.promote


def test_gate_yaml_is_optional_validated_and_read(tmp_path: Path) -> None:
    assert load_gate(tmp_path / "missing.yaml") == GateConfig()
    path = tmp_path / "gate.yaml"
    path.write_text("min_pass_rate: 0.5\nno_category_below_opponent: false\ndiagnosis: {min_loss_gain: 0.1}\n")
    gate = load_gate(path)
    assert gate.min_pass_rate == 0.5 and gate.min_win_rate == 0.5 and gate.diagnosis.min_loss_gain == 0.1
    bench = benchmarks([("memory_retrieval", True, True), ("code_execution", False, True)])
    assert decide(gate, bench, None, PRODUCTION, True).passed  # 50% and the category rule off
    path.write_text("min_pass_rate: 1.5\nmin_winrate: 0.6\n")
    with pytest.raises(MiltonError, match=r"gate\.yaml") as error:
        load_gate(path)
    assert "'min_pass_rate'" in str(error.value) and "did you mean 'min_win_rate'" in str(error.value)


FACTS = TrainingFacts(run_id="lora_1", config_path="training/configs/lora_default.yaml", learning_rate=2e-4,
                      num_epochs=3, max_steps=-1, lora_r=16, window_days=30, train_examples=120, min_steps=40,
                      global_steps=60, best_step=60, stop_reason="completed")  # fmt: skip
PEAKED = replace(FACTS, best_step=24, global_steps=42, stop_reason="early_stopping")
GOOD_SANITY = [SanityAnswer(id="plan", messages=[{"role": "user", "content": "Plan my Saturday"}],
                            adapter="Groceries at 10, a run at 16, dinner at 19.", opponent="Sure.")]  # fmt: skip


def scores(loss: float, accuracy: float) -> Scores:
    import math

    return Scores(eval_loss=loss, perplexity=math.exp(loss), token_accuracy=accuracy, scored_tokens=100)


def test_good_metrics_and_answers_need_no_explanation() -> None:
    assert diagnose(scores(0.9, 0.8), scores(1.2, 0.7), GOOD_SANITY, DiagnosisThresholds(), FACTS, "base") == []
    # A 135M model's chat perplexity is far above 3 and its token accuracy below 75%: judged against its base.
    assert diagnose(scores(1.45, 0.5), scores(4.22, 0.3), GOOD_SANITY, DiagnosisThresholds(), FACTS, "base") == []


def test_little_learned_while_still_improving_recommends_training_longer() -> None:
    (finding,) = diagnose(scores(1.98, 0.6), scores(2.0, 0.5), GOOD_SANITY, DiagnosisThresholds(), FACTS, "base")
    assert finding.signal == "little learned"
    assert finding.observed.startswith("held-out eval loss 1.9800 vs the base model's 2.0000: 1.0% lower, less than "
                                       "min_loss_gain 2%; held-out loss lowest at step 60 of 60")  # fmt: skip
    assert finding.fixes[0] == "recommended: num_epochs in training/configs/lora_default.yaml: 3 → 4"
    assert finding.fixes[1] == "or: learning_rate in training/configs/lora_default.yaml: 0.0002 → 0.0004"
    assert "milton-lora export --days 60" in finding.fixes[2] and "120 conversations" in finding.fixes[2]
    assert "tensorboard --logdir runs/lora_1/logs" in finding.fixes[3]
    at_the_floor = replace(FACTS, global_steps=40)
    (finding,) = diagnose(scores(1.98, 0.6), scores(2.0, 0.5), GOOD_SANITY, DiagnosisThresholds(), at_the_floor, "base")
    assert finding.fixes[0] == "recommended: min_steps in training/configs/lora_default.yaml: 40 → 80"


def test_little_learned_after_an_early_peak_recommends_more_data_not_epochs() -> None:
    (finding,) = diagnose(scores(1.98, 0.6), scores(2.0, 0.5), GOOD_SANITY, DiagnosisThresholds(), PEAKED, "base")
    assert finding.fixes[0].startswith("recommended: export more days")
    assert not any("num_epochs" in fix for fix in finding.fixes)


def test_thresholds_come_from_the_diagnosis_section() -> None:
    lenient = DiagnosisThresholds(min_loss_gain=0.0)
    assert diagnose(scores(1.98, 0.6), scores(2.0, 0.5), GOOD_SANITY, lenient, FACTS, "base") == []


def test_an_adapter_worse_than_its_base_is_always_flagged() -> None:
    (finding,) = diagnose(scores(0.5, 0.9), scores(0.4, 0.92), GOOD_SANITY, DiagnosisThresholds(), PEAKED, "base")
    assert finding.signal == "worse than its base model" and "+0.1000" in finding.observed
    assert "lowest at step 24 of 42" in finding.observed
    assert finding.fixes[0] == "recommended: learning_rate in training/configs/lora_default.yaml: 0.0002 → 0.0001"
    assert finding.fixes[1] == "or: lora_r in training/configs/lora_default.yaml: 16 → 8"


@pytest.mark.parametrize("facts", [FACTS, PEAKED], ids=["improving", "peaked"])
@pytest.mark.parametrize("losses", [(3.39, 2.84), (1.98, 2.0), (1.0, 2.0)], ids=["worse", "little", "good"])
def test_the_advice_never_points_both_ways(facts: TrainingFacts, losses: tuple[float, float]) -> None:
    """The demo's case in the issue: worse than the base, with looping answers; the summary advised both more and
    fewer epochs. Whatever the curve, one summary now holds one direction and every finding leads with one change."""
    sanity = [SanityAnswer(id="loop", messages=[{"role": "user", "content": "Hi"}], adapter="M. " * 30,
                           opponent="Hello! How can I help?")]  # fmt: skip
    findings = diagnose(scores(losses[0], 0.5), scores(losses[1], 0.5), sanity, DiagnosisThresholds(), facts, "base")
    fixes = [fix for finding in findings for fix in finding.fixes]
    more = any("→ 0.0004" in fix or "num_epochs" in fix or "min_steps" in fix for fix in fixes)
    less = any("→ 0.0001" in fix or "lora_r" in fix for fix in fixes)
    assert not (more and less), fixes
    assert all(sum(fix.startswith("recommended: ") for fix in f.fixes) == 1 for f in findings)
    assert all(f.fixes[0].startswith("recommended: ") for f in findings)


def test_degenerate_answers_are_recognized() -> None:
    assert is_empty("  \n", "hi") and not is_empty("Hi!", "hi")
    assert is_repetitive("I can help. " * 8, "x") and is_repetitive("!" * 60, "x")
    assert not is_repetitive("Groceries at 10, then a run along the river at 16, and dinner with friends at 19.", "x")
    assert is_echo("Plan my Saturday: groceries, a run.", "Plan my Saturday: groceries, a run.")
    assert is_echo("plan my saturday: groceries, a run. Sure!", "Plan my Saturday: groceries, a run.")
    assert not is_echo("Groceries first, then the run.", "Plan my Saturday: groceries, a run.")


def test_degenerate_sanity_answers_explain_whether_training_caused_them() -> None:
    sanity = [
        SanityAnswer(id="a", messages=[{"role": "user", "content": "Hi"}], adapter="", opponent=""),
        SanityAnswer(id="b", messages=[{"role": "user", "content": "Plan"}], adapter="", opponent="Sure, here."),
        SanityAnswer(id="c", messages=[{"role": "user", "content": "Go"}], adapter="go go go go go go go go go go",
                     opponent="Going."),
    ]  # fmt: skip
    findings = diagnose(scores(0.9, 0.8), scores(1.2, 0.7), sanity, DiagnosisThresholds(), FACTS, "base")
    by_signal = {f.signal: f for f in findings}
    assert set(by_signal) == {"sanity answers empty", "sanity answers repetitive"}
    assert by_signal["sanity answers empty"].observed == "2 of 3 sanity answers empty: a, b"
    assert by_signal["sanity answers empty"].causes[0].startswith("base answers a the same way")
    assert any("learning_rate" in fix for fix in by_signal["sanity answers repetitive"].fixes)


def test_readme_documents_every_gate_key_with_its_default() -> None:
    import yaml

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("`training/eval/gate.yaml` (optional")[1].split("```yaml\n")[1].split("```")[0]
    documented = yaml.safe_load(block)
    assert GateConfig.model_validate(documented) == GateConfig() and documented.keys() == GateConfig.model_fields.keys()
