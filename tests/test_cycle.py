"""`milton-lora cycle` on the tiny model: a week end to end, a week from production, the lock, a failed stage."""

from __future__ import annotations

import io
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from helpers import registry_of
from milton_lora.cycle import LOCKED_EXIT, cycle_lock
from milton_lora.demo.samples import write_cpu_config, write_sample_exports
from milton_lora.settings import Settings
from milton_lora.train.replay import older_only

SHIPPED = Path(__file__).resolve().parents[1] / "training" / "configs"
FAST = ["--max-new-tokens", "8"]
# The tiny model passes few benchmarks: a gate it can pass, so the cycle reaches the promotion decision.
LENIENT_GATE = "min_pass_rate: 0.0\nno_category_below_opponent: false\nstyle_not_below_opponent: false\n"


def prepare_week(home: Path, tiny_model_dir: Path, cli) -> None:
    """Memory with the sample history, a fast CPU config and a gate the tiny model passes."""
    for path in write_sample_exports(home.parent / "samples", datetime.now(timezone.utc)).values():
        assert cli("memory", "import", str(path)).exit_code == 0
    configs = home / "training" / "configs"
    write_cpu_config(configs / "lora_light.yaml", tiny_model_dir, SHIPPED / "lora_light.yaml", max_steps=4,
                     min_train_examples=2)  # fmt: skip
    write_cpu_config(configs / "rank16.yaml", tiny_model_dir, SHIPPED / "lora_default.yaml", max_steps=4)
    (home / "training" / "eval").mkdir(parents=True)
    (home / "training" / "eval" / "gate.yaml").write_text(LENIENT_GATE)
    Settings.from_env(home).redact_terms_path.write_text("always:\n  - Biscuit\n")  # the sample user's dog


def cycle_log(home: Path, cycle_id_line: str) -> dict:
    path = Path(cycle_id_line.split("Log: ")[1].split()[0])
    assert path.parent == home / "runs" / "cycles"
    return json.loads(path.read_text())


def starting_weights(home: Path, config: str) -> tuple[dict, bool]:
    """The LoRA weights a `--from-production` trainer holds before its first step, and whether they train."""
    from peft import get_peft_model_state_dict

    from milton_lora.chat.tokenizer import load_tokenizer
    from milton_lora.train.launch import plan_training
    from milton_lora.train.runner import build_trainer, load_base_model, tokenize_plan_data, training_conversations

    plan = plan_training(Settings.from_env(home), Path(config), None, from_production=True)
    tokenizer = load_tokenizer(plan.base_model)
    train, test = tokenize_plan_data(plan, tokenizer, training_conversations(plan, resume=False), None)
    trainer = build_trainer(plan, load_base_model(plan), tokenizer, train, test, [])
    trainable = any(p.requires_grad for name, p in trainer.model.named_parameters() if "lora_" in name)
    return get_peft_model_state_dict(trainer.model), trainable


class Terminal(io.StringIO):
    """Standard input that says it is a terminal, holding the person's answers."""

    def isatty(self) -> bool:
        return True


def test_a_week_end_to_end_then_a_week_from_production(home: Path, tiny_model_dir: Path, cli, monkeypatch) -> None:
    prepare_week(home, tiny_model_dir, cli)
    first = cli("cycle", "--days", "30", "--config", "lora_light.yaml", "--promote-if-candidate", *FAST)
    assert first.exit_code == 0, first.stderr
    log = cycle_log(home, first.stdout)
    run_id = log["run_id"]
    assert log["status"] == "completed" and log["failed_stage"] is None
    assert [(s["name"], s["status"]) for s in log["stages"]] == [
        ("export", "ok"), ("train", "ok"), ("preferences", "skipped"), ("evaluate", "ok"),
        ("promote", "ok")]  # fmt: skip
    assert log["stages"][2]["summary"]["reason"].startswith("skipped: ")  # fewer than 20 pairs in the samples
    assert all(s["seconds"] >= 0 for s in log["stages"]) and log["seconds"] > 0
    assert log["stages"][1]["summary"]["run_id"] == run_id and log["stages"][3]["summary"]["status"] == "candidate"
    assert log["decision"]["status"] == "candidate" and log["decision"]["gate_passed"]
    assert log["promotion"] == {"promoted": True, "outcome": f"{run_id} is in production"}
    assert registry_of(home).load().production().run_id == run_id
    assert "Gate: training → candidate" in first.stdout and "PROMOTE ADAPTER TO PRODUCTION" in first.stdout
    exported = (home / "training" / "data" / "exported" / "train.jsonl").read_text()
    assert "Biscuit" not in exported and "[CUSTOM]" in exported  # the cycle's export applies redact.yaml
    kept = home / "runs" / run_id / "train.jsonl"
    assert len(kept.read_text().splitlines()) == log["stages"][0]["summary"]["train_conversations"]
    assert not (home / "runs" / "cycles" / "cycle.holder.json").exists()  # the lock was let go

    other_rank = cli("cycle", "--days", "30", "--config", "rank16.yaml", "--from-production", *FAST)
    assert other_rank.exit_code == 1 and "Traceback" not in other_rank.stderr
    assert "cycle failed at train: --from-production: production " + run_id in other_rank.stderr
    assert "lora_r 8" in other_rank.stderr and "lora_r 16" in other_rank.stderr

    from safetensors.torch import load_file

    weights, trainable = starting_weights(home, "lora_light.yaml")
    production = load_file(home / "adapters" / run_id / "adapter_model.safetensors")
    assert trainable and weights.keys() == production.keys()
    assert all((weights[key] == production[key]).all() for key in production)  # starts where production is

    # A later week (a narrower window: the older conversations are only in production's training data).
    second = cli("cycle", "--days", "8", "--config", "lora_light.yaml", "--from-production", *FAST)
    assert second.exit_code == 0, second.stderr
    log = cycle_log(home, second.stdout)
    new_id = log["run_id"]
    assert log["decision"]["status"] == "candidate" and log["promotion"]["promoted"] is False
    assert "no terminal to confirm on" in log["promotion"]["outcome"] and "--to-production" in second.stdout
    assert registry_of(home).load().production().run_id == run_id  # nobody said yes
    metadata = json.loads((home / "adapters" / new_id / "metadata.json").read_text())
    assert metadata["init_from"]["run_id"] == run_id
    assert metadata["init_from"]["adapter_sha256"] == registry_of(home).get(run_id).sha256
    replay, new_train = metadata["replay"], log["stages"][0]["summary"]["train_conversations"]
    assert replay["fraction"] == 0.2 and replay["source"] == str(kept)
    assert replay["count"] == min(round(0.2 * new_train), replay["available"]) > 0
    trained = (home / "runs" / new_id / "train.jsonl").read_text().splitlines()
    assert len(trained) == new_train + replay["count"] == metadata["data"]["train_examples"]
    assert log["stages"][1]["summary"]["replay"]["count"] == replay["count"]
    # Written when the run started, so that `train --resume` records the same starting point.
    started = json.loads((home / "runs" / new_id / "init_from.json").read_text())
    assert {key: started[key] for key in ("init_from", "replay")} == {
        key: metadata[key] for key in ("init_from", "replay")
    }
    assert metadata["lineage"]["parent"] == run_id and metadata["lineage"]["replayed"] == replay["count"]
    assert started["continued"]["replay"] == metadata["lineage"]["train"][-replay["count"] :]
    assert registry_of(home).get(new_id).history[0].command.endswith("--from-production")

    # Asked on a terminal: "n" keeps it a candidate, "y" promotes it, through the same promotion as `promote`.
    from milton_lora.cli.cycle import TerminalUI

    ui = TerminalUI(Settings.from_env(home), "cycle")
    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    declined = ui.promote(new_id, asked_in_advance=False)
    assert not declined.promoted and declined.outcome.startswith("declined")
    assert registry_of(home).get(new_id).status == "candidate"
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    assert ui.promote(new_id, asked_in_advance=False).promoted
    assert registry_of(home).load().production().run_id == new_id
    assert registry_of(home).get(run_id).status == "archived"


def test_the_gate_flags_reach_the_evaluation(home: Path, tiny_model_dir: Path, tmp_path: Path, cli) -> None:
    prepare_week(home, tiny_model_dir, cli)
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "tests:\n"
        "  - {id: anything, category: task_understanding, prompt: 'Hi', check: {type: regex, pattern: '.*'}}\n"
        "  - {id: never, category: memory_retrieval, prompt: 'Hi', check: {type: contains, values: [xyzzy]}}\n"
    )
    strict = cli("cycle", "--days", "30", "--config", "lora_light.yaml", "--benchmarks", str(suite),
                 "--pass-threshold", "0.75", *FAST)  # fmt: skip
    assert strict.exit_code == 0, strict.stderr
    log = cycle_log(home, strict.stdout)
    assert log["request"]["pass_threshold"] == 0.75 and log["request"]["benchmarks"] == str(suite)
    # every evaluation option is recorded, the judge's and the batch's included
    assert {"judge_api_key_env", "judge_prompts", "judge_max_tokens", "allow_remote_judge", "batch_size"} <= set(
        log["request"]
    )
    assert log["request"]["allow_remote_judge"] is False and log["request"]["judge_max_tokens"] == 256
    assert log["decision"]["status"] == "training" and log["promotion"]["promoted"] is False
    assert any(reason.startswith("benchmark pass rate 50%") and "75%" in reason for reason in log["decision"]["held"])
    assert "eval_lora.py" not in strict.stdout  # the cycle evaluates; no "next: eval_lora.py" row


def test_a_second_cycle_is_refused_while_one_runs(home: Path, cli) -> None:
    settings = Settings.from_env(home)
    with cycle_lock(settings):
        refused = cli("cycle", "--days", "7")
    assert refused.exit_code == LOCKED_EXIT
    assert "another cycle is running" in refused.stderr and str(settings.cycle_lock_path) in refused.stderr
    assert f"by pid {os.getpid()} since " in refused.stderr and "Traceback" not in refused.stderr
    assert not list(settings.cycles_dir.glob("cycle_*.json"))  # nothing was done
    after = cli("cycle", "--days", "7")  # free again: this one runs (and fails at its first stage)
    assert after.exit_code == 1 and "cycle failed at export" in after.stderr


def test_a_failed_stage_is_named_and_leaves_a_log(home: Path, cli) -> None:
    failed = cli("cycle", "--days", "7")
    assert failed.exit_code == 1 and "Traceback" not in failed.stderr
    line = failed.stderr.strip()
    assert line.startswith("error: cycle failed at export: ") and "no memory store yet" in line
    assert len(line.splitlines()) == 1
    (path,) = (home / "runs" / "cycles").glob("cycle_*.json")
    log = json.loads(path.read_text())
    assert str(path) in line
    assert log["status"] == "failed" and log["failed_stage"] == "export" and "no memory store yet" in log["error"]
    assert [(s["name"], s["status"]) for s in log["stages"]] == [("export", "failed")]
    assert log["run_id"] is None and log["decision"] is None and log["traceback"] is None


def test_replay_leaves_out_what_the_new_export_already_holds() -> None:
    hello = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]
    grown = [*hello, {"role": "user", "content": "and?"}, {"role": "assistant", "content": "more"}]
    other = [{"role": "user", "content": "other"}, {"role": "assistant", "content": "answer"}]
    assert older_only([hello, other, grown], [grown]) == [other]
    assert older_only([grown], [hello]) == [grown]  # the older copy is the longer one: still worth replaying


def test_dry_run_shows_each_stage_plan_and_changes_nothing(home: Path, tiny_model_dir: Path, cli) -> None:
    prepare_week(home, tiny_model_dir, cli)
    before = cli("cycle", "--dry-run", "--days", "30", "--config", "lora_light.yaml")
    assert before.exit_code == 0, before.stderr  # no export on disk yet: training is planned after it
    assert (
        "Export plan (dry run: nothing written)" in before.stdout and "training cannot be planned now" in before.stderr
    )
    assert not (home / "training" / "data" / "exported").exists() and not (home / "runs").exists()
    assert cli("export", "--days", "7").exit_code == 0
    planned = cli("cycle", "--dry-run", "--days", "30", "--config", "lora_light.yaml", "--judge-prompts", "3")
    assert planned.exit_code == 0, planned.stderr
    assert "Training plan (dry run: nothing trained)" in planned.stdout and "judge_prompts" in planned.stdout
    assert "the cycle exports first" in planned.stderr  # 7 days on disk, 30 asked for
    assert not (home / "adapters").exists() and not (home / "runs" / "cycles").exists()


def test_the_preference_stage_continues_the_new_adapter_when_the_export_holds_enough(
    home: Path, tiny_model_dir: Path, cli
) -> None:
    from milton_lora.cli.common import redactor_of
    from milton_lora.cli.cycle import TerminalUI
    from milton_lora.cycle import CycleRequest, run_cycle
    from milton_lora.evaluate.options import EvalOptions
    from preference_fixtures import write_preferences

    class PreferencesInTheExport(TerminalUI):
        """Puts preferences where the export writes them, right after the cycle's export (as a history with
        regenerated replies would have them)."""

        def exported(self, summary) -> None:
            super().exported(summary)
            write_preferences(Path(summary.output_dir), train_pairs=8, test_pairs=3)

    prepare_week(home, tiny_model_dir, cli)
    write_cpu_config(home / "training/configs/dpo.yaml", tiny_model_dir, SHIPPED / "lora_dpo.yaml", max_steps=2,
                     min_train_preferences=8, max_seq_length=256)  # fmt: skip
    settings = Settings.from_env(home)
    dry = cli("cycle", "--dry-run", "--days", "30", "--config", "lora_light.yaml", "--preference-config", "dpo.yaml")
    assert dry.exit_code == 0 and "skipped: 0 train-split pairs" in " ".join(dry.stdout.split())
    write_preferences(settings.export_dir, train_pairs=8, test_pairs=3)
    dry = cli("cycle", "--dry-run", "--days", "30", "--config", "lora_light.yaml", "--preference-config", "dpo.yaml")
    assert dry.exit_code == 0 and "dpo on 8 pairs / 3 pairs" in " ".join(dry.stdout.split())
    off = cli("cycle", "--dry-run", "--days", "30", "--config", "lora_light.yaml", "--no-preferences")
    assert off.exit_code == 0 and "off (--no-preferences)" in off.stdout

    request = CycleRequest(days=30, config=Path("lora_light.yaml"), preference_config=Path("dpo.yaml"),
                           evaluation=EvalOptions(max_new_tokens=8, style_prompts=0))  # fmt: skip
    log = run_cycle(settings, request, PreferencesInTheExport(settings, "cycle"), redactor_of(settings))
    assert [(s.name, s.status) for s in log.stages][:4] == [
        ("export", "ok"), ("train", "ok"), ("preferences", "ok"), ("evaluate", "ok")]  # fmt: skip
    sft, dpo = log.stages[1].summary["run_id"], log.stages[2].summary["run_id"]
    assert log.run_id == dpo != sft and log.stages[2].summary["method"] == "dpo"
    record = json.loads((home / "adapters" / dpo / "metadata.json").read_text())
    assert record["method"] == "dpo" and record["init_from"]["run_id"] == sft
    metrics = json.loads((home / "runs" / dpo / "metrics.json").read_text())
    assert metrics["preferences"]["pairs"] == 3 and log.stages[3].summary["status"] == "candidate"
