"""Preference training (`method: dpo | kto`) on the tiny model: the config, the safety check, DPO from new weights
and KTO continuing an SFT adapter, each leaving an adapter whose record names its method, and the evaluation's
preference accuracy for the adapter and the base."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml

from helpers import copy_home, registry_of
from milton_lora.config import TrainConfig, load_model
from milton_lora.errors import MiltonError
from milton_lora.evaluate.gate import GateConfig, decide
from milton_lora.evaluate.result import Opponent, Preferences, PreferenceSide
from milton_lora.preferences import read_preferences
from milton_lora.settings import Settings, shipped
from preference_fixtures import write_preferences
from test_gate_and_diagnosis import benchmarks

SHIPPED = Path(__file__).resolve().parents[1] / "training" / "configs"
FAST = {"learning_rate": 1.0e-2, "max_steps": 3, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
        "warmup_steps": 0, "max_seq_length": 256, "use_gradient_checkpointing": False, "bf16": False,
        "min_train_preferences": 8}  # fmt: skip


def flat(text: str) -> str:
    """Printed tables as one line of words (cells wrap inside their column)."""
    return " ".join(re.sub("[│┃]", " ", text).split())


def preference_config(home: Path, name: str, method: str, base: Path, **overrides: object) -> str:
    config = yaml.safe_load((SHIPPED / f"lora_{method}.yaml").read_text())
    config.update({"base_model_path": str(base), "init_from": "base", **FAST, **overrides})
    (home / "training/configs").mkdir(parents=True, exist_ok=True)
    (home / "training/configs" / name).write_text(yaml.safe_dump(config, sort_keys=False))
    return name


@pytest.fixture
def preference_home(trained_home: Path, home: Path) -> Path:
    """A copy of the trained home (samples exported, one SFT adapter) with preferences beside its export."""
    copy_home(trained_home, home)
    write_preferences(home / "training/data/exported", train_pairs=10, test_pairs=4, train_labels=6, test_labels=2)
    return home


def test_the_shipped_preference_configs_validate_and_typos_name_the_key(tmp_path: Path) -> None:
    for method in ("dpo", "kto"):
        config = load_model(shipped("configs", f"lora_{method}.yaml"), TrainConfig)
        assert config.method == method and config.init_from == "production" and config.beta == 0.1
        assert (SHIPPED / f"lora_{method}.yaml").read_text() == shipped("configs", f"lora_{method}.yaml").read_text()
    assert load_model(shipped("configs", "lora_default.yaml"), TrainConfig).method == "sft"
    bad = tmp_path / "bad.yaml"
    bad.write_text("base_model_path: x\nmethod: ppo\nbta: 0.2\n")
    with pytest.raises(MiltonError) as error:
        load_model(bad, TrainConfig)
    assert "unknown key 'bta' (did you mean 'beta'?)" in str(error.value)
    assert "'method': Input should be 'sft', 'dpo' or 'kto'" in str(error.value)


def test_too_few_pairs_are_refused_in_one_line(preference_home: Path, tiny_model_dir: Path, cli) -> None:
    name = preference_config(preference_home, "dpo.yaml", "dpo", tiny_model_dir, min_train_preferences=11)
    result = cli("train", "--config", name, "--dry-run")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert "preferences.jsonl: 10 train-split pairs, at least 11 needed for method: dpo (min_train_preferences)" in (
        flat(result.stderr)
    )
    assert not list((preference_home / "runs").glob("dpo_*"))  # the refused run gave its id back


def test_dpo_from_new_weights_trains_records_and_is_measured(preference_home: Path, tiny_model_dir: Path,
                                                             cli) -> None:  # fmt: skip
    name = preference_config(preference_home, "dpo.yaml", "dpo", tiny_model_dir)
    planned = cli("train", "--config", name, "--dry-run")
    assert planned.exit_code == 0, planned.stderr
    assert "10 pairs / 4 pairs" in flat(planned.stdout)
    assert "the base model: the same weights with the adapter disabled" in flat(planned.stdout)

    trained = cli("train", "--config", name)
    assert trained.exit_code == 0, trained.stderr
    run_id = registry_of(preference_home).resolve("latest")
    adapter, run = preference_home / "adapters" / run_id, preference_home / "runs" / run_id
    record = json.loads((adapter / "metadata.json").read_text())
    assert record["method"] == "dpo" and record["results"]["global_steps"] == 3
    assert record["preferences"]["train_pairs"] == 10 and record["preferences"]["test_pairs"] == 4
    assert record["data"]["train_examples"] == 10 and record["data"]["test_examples"] == 4
    assert record["init_from"] is None and record["results"]["final_eval_loss"] is not None
    assert len((run / "preferences.jsonl").read_text().splitlines()) == 10  # the train split it learned from
    assert list((run / "logs").glob("events.out.tfevents.*")) and list((run / "checkpoints").glob("checkpoint-*"))
    assert (adapter / "adapter_model.safetensors").exists() and not (adapter / "ref").exists()

    evaluated = cli("eval", "--run-id", run_id, "--max-new-tokens", "4", "--style-prompts", "0")
    assert evaluated.exit_code == 0, evaluated.stderr
    assert "Held-out preferences: 4 pairs" in flat(evaluated.stdout)
    metrics = json.loads((run / "metrics.json").read_text())
    found = metrics["preferences"]
    assert found["pairs"] == 4 and found["production"] is None
    assert 0.0 <= found["adapter"]["accuracy"] <= 1.0 and found["adapter"]["reward_accuracy"] is not None
    assert found["base"]["reward_accuracy"] is None  # the base is its own reference
    assert found["adapter"]["mean_margin"] != found["base"]["mean_margin"]  # the adapter moved
    assert any(c["name"] == "preference accuracy vs base" for c in metrics["gate"]["criteria"])
    assert cli("report", run_id).exit_code == 0
    assert "Held-out preferences: 4 pairs" in (run / "report.html").read_text()

    (preference_home / "training/data/exported/preferences.jsonl").unlink()  # an export without preferences
    again = cli("eval", "--run-id", run_id, "--max-new-tokens", "4", "--style-prompts", "0")
    assert again.exit_code == 0, again.stderr
    assert "no held-out preference pairs" in flat(again.stdout)
    assert json.loads((run / "metrics.json").read_text())["preferences"] is None


def test_kto_continues_an_sft_adapter_with_its_copy_as_reference(preference_home: Path, tiny_model_dir: Path,
                                                                 cli) -> None:  # fmt: skip
    sft = registry_of(preference_home).resolve("latest")
    name = preference_config(preference_home, "kto.yaml", "kto", tiny_model_dir, lora_r=4)
    trained = cli("train", "--config", name, "--init-from", sft)
    assert trained.exit_code == 0, trained.stderr
    run_id = registry_of(preference_home).resolve("latest")
    record = json.loads((preference_home / "adapters" / run_id / "metadata.json").read_text())
    assert record["method"] == "kto" and record["init_from"]["run_id"] == sft
    assert record["data"]["train_examples"] == 6 + 2 * 10  # the labels, and each pair taken apart
    assert record["preferences"]["train_desirable"] == 3 and record["preferences"]["train_undesirable"] == 3
    sft_config = json.loads((preference_home / "adapters" / sft / "adapter_config.json").read_text())
    ours = json.loads((preference_home / "adapters" / run_id / "adapter_config.json").read_text())
    assert ours["r"] == sft_config["r"] != 4  # the continued adapter's shape, not the config's
    assert record["lineage"]["parent"] == sft and record["lineage"]["inherited"]
    history = registry_of(preference_home).get(run_id).history
    assert history[0].command.endswith(f"--init-from {sft}")
    # `--resume` plans the same start again, so the reference stays the SFT adapter.
    resumed = cli("train", "--resume", run_id, "--dry-run")
    assert resumed.exit_code == 0, resumed.stderr
    assert f"{sft}'s LoRA weights, frozen" in flat(resumed.stdout)


def test_the_gate_can_hold_an_adapter_that_prefers_less_than_its_opponent() -> None:
    def side(accuracy: float) -> PreferenceSide:
        return PreferenceSide(accuracy=accuracy, mean_margin=0.0)

    bench = benchmarks([("memory_retrieval", True, True)])
    base = Opponent(kind="base")
    worse = Preferences(file="p.jsonl", pairs=10, adapter=side(0.5), production=None, base=side(0.7))
    decision = decide(GateConfig(), bench, None, base, True, None, worse)
    (failed,) = decision.failed()
    assert failed.name == "preference accuracy vs base" and failed.value == "50% vs 70% of 10 held-out pairs"
    close = worse.model_copy(update={"adapter": side(0.66)})
    assert decide(GateConfig(), bench, None, base, True, None, close).passed  # within preference_tolerance
    assert decide(GateConfig(preference_not_below_opponent=False), bench, None, base, True, None, worse).passed


def test_regenerations_and_feedback_in_memory_train_dpo_and_kto_and_are_measured(
    home: Path, tmp_path: Path, tiny_model_dir: Path, cli
) -> None:
    """The whole way: a ChatGPT export with regenerated replies, and thumbs and an edit posted to the real
    server (capture on) as the openai client's raw request → memory → preferences.jsonl → DPO from new weights
    and KTO continuing it → eval's preference accuracy."""
    from export_shapes import chatgpt_regenerated
    from helpers import Server, free_port
    from milton_lora.export import split_of
    from milton_lora.memory import MemoryStore
    from preference_fixtures import generic_reply, person_reply, topic

    chats = [chatgpt_regenerated(f"regen-{n}", f"Chat {n}", [(f"What should I do about {topic(n)}?",
                                                                [generic_reply(topic(n)), person_reply(topic(n))])])
             for n in range(14)]  # fmt: skip
    assert {split_of(f"chatgpt:regen-{n}") for n in range(14)} == {"train", "test"}
    source = tmp_path / "conversations.json"
    source.write_text(json.dumps(chats))
    assert cli("memory", "import", str(source)).exit_code == 0

    (home / "training/configs").mkdir(parents=True, exist_ok=True)
    serve = {"capture": True, "base_model_path": str(tiny_model_dir), "base_model_name": "tiny"}
    (home / "training/configs/serve.yaml").write_text(yaml.safe_dump(serve))
    running = Server(home, free_port(), {"MILTON_SERVE_API_KEY": ""})
    try:
        client = running.client()
        for number in range(4):
            asked = [{"role": "user", "content": f"Plan {topic(number + 20)} for me"}]
            reply = client.chat.completions.create(model="tiny", messages=asked, max_tokens=6)
            body = {"response_id": reply.id, "rating": "up" if number % 2 else "down"}
            if number == 0:
                body["edited_content"] = person_reply(topic(20))
            given = client.post("/feedback", body=body, cast_to=httpx.Response)
            assert given.status_code == 200, given.text
    finally:
        running.stop()
    assert cli("export").exit_code == 0
    exported = read_preferences(home / "training/data/exported/preferences.jsonl")
    pairs = [p for p in exported if p.kind == "pair"]
    labels = [p for p in exported if p.kind == "label"]
    assert len(pairs) == 14 + 1 and len(labels) == 4  # the regenerations and the edit; the thumbs
    test_pairs = sum(p.split == "test" for p in pairs)

    dpo = preference_config(home, "dpo.yaml", "dpo", tiny_model_dir, min_train_preferences=4)
    assert cli("train", "--config", dpo).exit_code == 0
    dpo_id = registry_of(home).resolve("latest")
    kto = preference_config(home, "kto.yaml", "kto", tiny_model_dir, min_train_preferences=4)
    trained = cli("train", "--config", kto, "--init-from", dpo_id)
    assert trained.exit_code == 0, trained.stderr
    kto_id = registry_of(home).resolve("latest")
    record = json.loads((home / "adapters" / kto_id / "metadata.json").read_text())
    assert record["method"] == "kto"
    assert record["preferences"]["train_labels"] == sum(p.split == "train" for p in labels)
    assert record["lineage"]["train"] and record["lineage"]["parent"] == dpo_id  # the conversations it learned from

    evaluated = cli("eval", "--run-id", kto_id, "--max-new-tokens", "4", "--style-prompts", "0")
    assert evaluated.exit_code == 0, evaluated.stderr
    found = json.loads((home / "runs" / kto_id / "metrics.json").read_text())["preferences"]
    assert found["pairs"] == test_pairs and found["adapter"]["reward_accuracy"] is not None

    # Forgetting a conversation the preference runs learned from: their kept preferences lose its lines (with
    # their lineage), and both adapters are tainted.
    kept = home / "runs" / dpo_id / "preferences.jsonl"
    before = len(kept.read_text().splitlines())
    forgotten = next(c for c in pairs if c.split == "train")
    with MemoryStore(Settings.from_env(home).memory_db) as store:
        owner = next(c for c in store.conversations() if c.messages[0].content == forgotten.prompt[0].content)
    assert cli("memory", "forget", str(owner.id), "--yes").exit_code == 0
    assert len(kept.read_text().splitlines()) == before - 1 and forgotten.chosen not in kept.read_text()
    lineage = json.loads((home / "runs" / dpo_id / "preferences_lineage.json").read_text())["lines"]
    assert len(lineage) == before - 1
    assert registry_of(home).get(dpo_id).tainted and registry_of(home).get(kto_id).tainted
