"""Training: config validation, safety checks, loss-mask guards, exact packing, and real runs on the tiny model."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM

from helpers import PYTHON, REPO, copy_home, run_subprocess
from milton_lora.chat.masks import IGNORE, tokenize_conversation
from milton_lora.chat.tokenizer import load_tokenizer
from milton_lora.config import TrainConfig, load_model
from milton_lora.demo.samples import write_cpu_config
from milton_lora.errors import MiltonError
from milton_lora.registry import Registry
from milton_lora.report import read_scalars
from milton_lora.settings import Settings

SHIPPED = REPO / "training" / "configs"
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Remind me to water the plants."},
    {"role": "assistant", "content": "Done: plants at 18:00."},
    {"role": "user", "content": "And call mum?"},
    {"role": "assistant", "content": "Added: call mum at 19:00."},
]


# --- configs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "r", "alpha", "batch"), [("light", 8, 16, 8), ("default", 16, 32, 4), ("heavy", 64, 128, 2)]
)
def test_shipped_configs_validate(name: str, r: int, alpha: int, batch: int) -> None:
    config = load_model(SHIPPED / f"lora_{name}.yaml", TrainConfig)
    assert (config.lora_r, config.lora_alpha, config.per_device_train_batch_size) == (r, alpha, batch)
    raw = yaml.safe_load((SHIPPED / f"lora_{name}.yaml").read_text())
    documented_keys = {"base_model_path", "run_name_prefix", "lora_r", "lora_alpha", "lora_dropout", "target_modules",
                 "learning_rate", "num_epochs", "per_device_train_batch_size", "gradient_accumulation_steps", "bf16",
                 "lr_scheduler_type", "warmup_steps", "max_grad_norm", "train_file", "test_file",
                 "max_seq_length", "use_gradient_checkpointing"}  # fmt: skip
    assert documented_keys <= set(raw)


def test_config_errors_are_all_reported_with_suggestions(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("base_model_path: x\nlora_rank: 8\nlearning_rate: -1\nlora_alpha: 16.5\n")
    with pytest.raises(MiltonError) as error:
        load_model(path, TrainConfig)
    message = str(error.value)
    assert str(path) in message and "\n" not in message
    assert "unknown key 'lora_rank' (did you mean 'lora_r'?)" in message
    assert "'learning_rate'" in message and "'lora_alpha'" in message


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("base_model_path: x\nlora_r: [8\n")
    with pytest.raises(MiltonError, match=r"broken.yaml:\d+: not valid YAML"):
        load_model(path, TrainConfig)


# --- safety checks -------------------------------------------------------------------------------


def test_dry_run_checks_and_trains_nothing(trained_home: Path, tmp_path: Path, tiny_model_dir: Path, cli) -> None:
    home = copy_home(trained_home, tmp_path / "home")
    before = sorted(p.name for p in (home / "adapters").iterdir())
    result = cli("--home", str(home), "train", "--config", "lora_light.yaml", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "dry run" in result.stdout and "bf16" not in result.stderr  # the CPU config asks for fp32
    assert sorted(p.name for p in (home / "adapters").iterdir()) == before

    config = home / "training/configs/lora_light.yaml"
    write_cpu_config(config, tmp_path / "nowhere", SHIPPED / "lora_light.yaml", min_free_disk_gb=1e9, bf16=True)
    failed = cli("--home", str(home), "train", "--config", str(config), "--dry-run")
    assert failed.exit_code == 1
    assert "no config.json there" in failed.stderr and "GB required (min_free_disk_gb)" in failed.stderr


def test_checks_refuse_small_data_and_templateless_models(trained_home: Path, tmp_path: Path,
                                                          tiny_model_dir: Path, cli) -> None:  # fmt: skip
    home = copy_home(trained_home, tmp_path / "home")
    train_file = home / "training/data/exported/train.jsonl"
    train_file.write_text("".join(train_file.read_text().splitlines(keepends=True)[:3]))
    small = cli("--home", str(home), "train", "--config", "lora_light.yaml", "--dry-run")
    assert small.exit_code == 1 and "3 conversations, at least 10 needed" in small.stderr

    bare = copy_home(tiny_model_dir, tmp_path / "bare-model")
    tokenizer_config = json.loads((bare / "tokenizer_config.json").read_text())
    tokenizer_config.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    write_cpu_config(home / "training/configs/bare.yaml", bare, SHIPPED / "lora_light.yaml")
    templateless = cli("--home", str(home), "train", "--config", "bare.yaml", "--dry-run")
    assert templateless.exit_code == 1 and "no chat template" in templateless.stderr


def test_bf16_on_cpu_falls_back_with_a_warning(trained_home: Path, tmp_path: Path, tiny_model_dir: Path, cli) -> None:
    home = copy_home(trained_home, tmp_path / "home")
    write_cpu_config(home / "training/configs/b.yaml", tiny_model_dir, SHIPPED / "lora_light.yaml", bf16=True)
    result = cli("--home", str(home), "train", "--config", "b.yaml", "--dry-run")
    assert result.exit_code == 0 and "training in fp32" in result.stderr


def test_4bit_on_cpu_is_a_clear_error(trained_home: Path, tmp_path: Path, tiny_model_dir: Path, cli) -> None:
    home = copy_home(trained_home, tmp_path / "home")
    write_cpu_config(home / "training/configs/q.yaml", tiny_model_dir, SHIPPED / "lora_light.yaml", load_in_4bit=True)
    result = cli("--home", str(home), "train", "--config", "q.yaml", "--dry-run")
    assert result.exit_code == 1 and "load_in_4bit: true needs a CUDA GPU" in result.stderr


def test_adapters_and_runs_folders_are_the_homes_own(trained_home: Path, tmp_path: Path, tiny_model_dir: Path,
                                                    cli) -> None:  # fmt: skip
    """eval, promote and serve look in MILTON_HOME/adapters: a config naming another folder is refused, one
    naming the home's own (as configs written before the keys retired do) still trains there."""
    home = copy_home(trained_home, tmp_path / "home")
    config = home / "training/configs/elsewhere.yaml"
    write_cpu_config(config, tiny_model_dir, SHIPPED / "lora_light.yaml", adapters_dir="my_adapters")
    refused = cli("--home", str(home), "train", "--config", "elsewhere.yaml", "--dry-run")
    assert refused.exit_code == 1 and "Traceback" not in refused.stderr
    assert f"adapters_dir: my_adapters is retired; runs always write to {home / 'adapters'}" in refused.stderr
    assert "remove the key" in refused.stderr and not (home / "my_adapters").exists()

    write_cpu_config(config, tiny_model_dir, SHIPPED / "lora_light.yaml", adapters_dir="adapters", runs_dir="runs")
    accepted = cli("--home", str(home), "train", "--config", "elsewhere.yaml", "--dry-run")
    assert accepted.exit_code == 0 and "dry run" in accepted.stdout, accepted.stderr


# --- loss mask guards ----------------------------------------------------------------------------


def test_exactly_one_bos_and_only_assistant_tokens_labelled(tiny_model_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_model_dir)
    example = tokenize_conversation(tokenizer, CONVERSATION)
    ids, labels = example["input_ids"], example["labels"]
    assert ids.count(tokenizer.bos_token_id) == 1 and ids[0] == tokenizer.bos_token_id
    labelled = tokenizer.decode([t for t, lab in zip(ids, labels, strict=True) if lab != IGNORE])
    assert labelled == "Done: plants at 18:00.<|eot_id|>Added: call mum at 19:00.<|eot_id|>"


def test_end_of_turn_labelled_in_every_assistant_turn(tiny_model_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_model_dir)
    eot = tokenizer.convert_tokens_to_ids("<|eot_id|>")
    example = tokenize_conversation(tokenizer, CONVERSATION)
    eot_labels = [lab for t, lab in zip(example["input_ids"], example["labels"], strict=True) if t == eot]
    assert len(eot_labels) == 5  # system, user, assistant, user, assistant: only the assistants' are trained
    assert eot_labels.count(eot) == 2


def test_pad_is_never_an_end_of_sequence_token(tiny_model_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_model_dir)
    end_tokens = {tokenizer.convert_tokens_to_ids("<|eot_id|>"), tokenizer.convert_tokens_to_ids("<|end_of_text|>")}
    assert tokenizer.pad_token_id is not None and tokenizer.pad_token_id not in end_tokens


def _examples(tokenizer) -> list[dict[str, list[int]]]:
    conversations = [
        CONVERSATION,
        [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "Sunny, 21 degrees."}],
        [{"role": "user", "content": "Write hello world in Python"}, {"role": "assistant", "content": "print('hi')"}],
    ]
    return [tokenize_conversation(tokenizer, c) for c in conversations]


@pytest.mark.parametrize("attention", ["sdpa", "milton_packed_sdpa"])
def test_packed_loss_equals_unpacked_loss(tiny_model_dir: Path, attention: str) -> None:
    """TRL's padding-free collator + per-conversation attention: no attention across conversations.

    Stock SDPA gets a per-document mask that transformers builds from position_ids only with no attention
    mask and no KV cache (TRL's trainer passes use_cache=False); the control shows its leak with the cache
    left on. Our per-span attention reads the conversations from the position ids either way.
    """
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from milton_lora.train.attention import register_packed_attention

    register_packed_attention()
    tokenizer = load_tokenizer(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation=attention).eval()
    examples = _examples(tokenizer)
    packed = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(examples)
    padded = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)(examples)
    assert "attention_mask" not in packed and packed["input_ids"].shape[0] == 1
    with torch.no_grad():
        packed_loss = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"],
                            labels=packed["labels"], use_cache=False).loss  # fmt: skip
        padded_loss = model(**{k: padded[k] for k in ("input_ids", "attention_mask", "labels")}).loss
        # Control: with a KV cache the packed row is read as one long document.
        leaky = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"],
                      labels=packed["labels"], use_cache=True).loss  # fmt: skip
    assert packed_loss.item() == pytest.approx(padded_loss.item(), abs=1e-5)
    if attention == "sdpa":
        assert abs(leaky.item() - padded_loss.item()) > 1e-4
    else:
        assert leaky.item() == pytest.approx(padded_loss.item(), abs=1e-5)


def _lora_after_one_step(
    tiny_model_dir: Path, tmp_path: Path, batch: int, accumulation: int, ours: bool
) -> dict[str, torch.Tensor]:
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from milton_lora.train.attention import PACKED_SDPA, register_packed_attention
    from milton_lora.train.loss import install_labelled_head

    register_packed_attention()
    tokenizer = load_tokenizer(tiny_model_dir)
    examples = _examples(tokenizer) * 2
    args = SFTConfig(
        output_dir=str(tmp_path / f"b{batch}"), per_device_train_batch_size=batch,
        gradient_accumulation_steps=accumulation, max_steps=1, learning_rate=1e-2, warmup_steps=0,
        lr_scheduler_type="constant", report_to="none", disable_tqdm=True, save_strategy="no", max_length=256,
        packing=True, packing_strategy="bfd", padding_free=True, seed=0, data_seed=0, shuffle_dataset=False,
        dataloader_pin_memory=False, bf16=False,
    )  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation=PACKED_SDPA if ours else "sdpa")
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(examples), processing_class=tokenizer,
        peft_config=LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                               task_type="CAUSAL_LM", init_lora_weights="gaussian"),
    )  # fmt: skip
    if ours:
        install_labelled_head(trainer.model.get_base_model())
    trainer.train()
    return {k: v.detach().clone() for k, v in trainer.model.named_parameters() if "lora_" in k}


@pytest.mark.parametrize("ours", [False, True], ids=["trl-defaults", "packed-attention-labelled-loss"])
def test_gradient_accumulation_matches_one_large_batch(tiny_model_dir: Path, tmp_path: Path, ours: bool) -> None:
    """TRL divides the summed token losses by the step's labelled-token count (num_items_in_batch): 2 rows x 1
    micro-batch and 1 row x 2 accumulated micro-batches give the same LoRA weights, with our kernels too."""
    torch.manual_seed(0)
    large = _lora_after_one_step(tiny_model_dir, tmp_path, batch=2, accumulation=1, ours=ours)
    torch.manual_seed(0)
    accumulated = _lora_after_one_step(tiny_model_dir, tmp_path, batch=1, accumulation=2, ours=ours)
    assert large.keys() == accumulated.keys()
    for name in large:
        torch.testing.assert_close(large[name], accumulated[name], rtol=1e-4, atol=1e-6, msg=name)


# --- real runs -----------------------------------------------------------------------------------


def test_trained_adapter_outputs(trained_home: Path, tiny_model_dir: Path) -> None:
    from peft import PeftModel

    settings = Settings.from_env(trained_home)
    (run_id,) = [p.name for p in settings.adapters_dir.iterdir()]
    adapter = settings.adapters_dir / run_id
    assert {"adapter_config.json", "adapter_model.safetensors", "metadata.json"} <= {p.name for p in adapter.iterdir()}
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["bias"], config["use_dora"]) == (8, 16, "none", False)
    assert config["modules_to_save"] is None and config["base_model_name_or_path"] == str(tiny_model_dir)

    metadata = json.loads((adapter / "metadata.json").read_text())
    assert metadata["results"]["global_steps"] == 30 and metadata["schema_version"] == 2
    vocab = json.loads((tiny_model_dir / "config.json").read_text())["vocab_size"]
    assert metadata["results"]["final_eval_loss"] < math.log(vocab) - 0.05  # below uniform guessing: it learned
    export = json.loads((trained_home / "training/data/exported/metadata.json").read_text())
    assert metadata["data"]["export_files_sha256"] == export["files"]
    assert {"torch", "transformers", "peft", "trl"} <= set(metadata["libraries"])
    assert metadata["trainable_parameters"] > 0 and metadata["config"]["lora_r"] == 8
    assert metadata["kernels"] == {
        "attention": "milton_packed_sdpa",
        "loss": "chunked",
        "lora": "fused",
        "gradient_checkpointing": False,
    }

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(adapter))
    assert any("lora_A" in name for name, _ in model.named_parameters())

    scalars = read_scalars(settings.runs_dir / run_id / "logs")
    assert {"train/loss", "eval/loss", "train/learning_rate"} <= set(scalars)
    assert scalars["train/loss"][-1][1] < scalars["train/loss"][0][1]
    assert list((settings.runs_dir / run_id / "checkpoints").glob("checkpoint-*"))
    # The final weights are evaluated once (the evaluation train() ran at its last step is reused) ...
    eval_steps = [step for step, _ in scalars["eval/loss"]]
    assert len(eval_steps) == len(set(eval_steps)) and eval_steps[-1] == 30
    assert metadata["results"]["final_eval_loss"] == pytest.approx(scalars["eval/loss"][-1][1], rel=1e-6)
    # ... and the throughput counts training time alone.
    timings, results = metadata["timings"], metadata["results"]
    assert 0 < timings["eval_seconds_in_training"] < timings["train_runtime"]
    training_only = timings["train_runtime"] - timings["eval_seconds_in_training"]
    assert results["tokens_per_second"] == pytest.approx(results["tokens_seen"] / training_only, rel=0.01)

    entry = Registry.of(settings).get(run_id)
    assert entry.status == "training" and entry.base_model_path == str(tiny_model_dir)


def test_documented_command_line_trains_end_to_end(trained_home: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    home = copy_home(trained_home, tmp_path / "home")
    write_cpu_config(home / "training/configs/lora_default.yaml", tiny_model_dir, SHIPPED / "lora_default.yaml",
                     max_steps=4)  # fmt: skip
    result = run_subprocess(["python", "scripts/train_lora.py", "--config", "training/configs/lora_default.yaml"],
                            REPO, home)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(list((home / "adapters").iterdir())) == 2
    config = json.loads(
        next(p for p in (home / "adapters").glob("*/adapter_config.json") if 'r": 16' in p.read_text()).read_text()
    )
    assert config["lora_alpha"] == 32


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_total_steps(trained_home: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    home = copy_home(trained_home, tmp_path / "home")
    write_cpu_config(home / "training/configs/long.yaml", tiny_model_dir, SHIPPED / "lora_light.yaml",
                     max_steps=40, save_steps=5, early_stopping_patience=0, run_name_prefix="long")  # fmt: skip
    env = {**os.environ, "MILTON_HOME": str(home), "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([PYTHON, "-m", "milton_lora", "train", "--config", "long.yaml"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 180
    while time.time() < deadline and not list((home / "runs").glob("long_*/checkpoints/checkpoint-10")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (run_dir,) = list((home / "runs").glob("long_*"))
    assert not (home / "adapters" / run_dir.name).exists(), "killed too late"
    resumed = run_subprocess(["python", "-m", "milton_lora", "train", "--resume", run_dir.name], REPO, home)
    assert resumed.returncode == 0, resumed.stderr
    metadata = json.loads((home / "adapters" / run_dir.name / "metadata.json").read_text())
    assert metadata["results"]["global_steps"] == 40


@pytest.mark.slow
def test_two_process_gloo_training(trained_home: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    home = copy_home(trained_home, tmp_path / "home")
    write_cpu_config(home / "training/configs/ddp.yaml", tiny_model_dir, SHIPPED / "lora_light.yaml",
                     max_steps=4, run_name_prefix="ddp")  # fmt: skip
    result = run_subprocess(
        ["python", "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
         "-m", "milton_lora", "train", "--config", "ddp.yaml"], REPO, home,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (adapter,) = list((home / "adapters").glob("ddp_*"))
    metadata = json.loads((adapter / "metadata.json").read_text())
    assert metadata["world_size"] == 2 and metadata["results"]["global_steps"] == 4
    assert len(list((home / "runs").glob("ddp_*"))) == 1


def test_readme_configuration_reference_is_generated() -> None:
    from milton_lora.config import full_reference

    readme = (REPO / "README.md").read_text()
    section = readme.split("<!-- config-reference:start -->\n")[1].split("<!-- config-reference:end -->")[0]
    assert section == full_reference(), "run `milton-lora config-reference` and paste it into the README"


def test_resume_skips_a_checkpoint_left_half_written(tmp_path: Path) -> None:
    from milton_lora.train.runner import latest_checkpoint

    for step, state in ((5, '{"global_step": 5}'), (10, '{"global_st'), (15, None)):
        folder = tmp_path / "checkpoints" / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        if state is not None:
            (folder / "trainer_state.json").write_text(state)
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoints" / "checkpoint-5"
    assert latest_checkpoint(tmp_path / "nothing") is None


@pytest.mark.gpu
@pytest.mark.parametrize("four_bit", [False, True])
def test_gpu_bf16_and_qlora_train(trained_home: Path, tmp_path: Path, tiny_model_dir: Path, four_bit: bool) -> None:
    """On CUDA: bf16 mixed precision, and QLoRA (4-bit NF4 base via bitsandbytes) train and save a loadable adapter."""
    home = copy_home(trained_home, tmp_path / "home")
    write_cpu_config(home / "training/configs/gpu.yaml", tiny_model_dir, SHIPPED / "lora_light.yaml", bf16=True,
                     load_in_4bit=four_bit, max_steps=4, run_name_prefix="gpu")  # fmt: skip
    result = run_subprocess(["python", "-m", "milton_lora", "train", "--config", "gpu.yaml"], REPO, home)
    assert result.returncode == 0, result.stderr[-3000:]
    (adapter,) = list((home / "adapters").glob("gpu_*"))
    metadata = json.loads((adapter / "metadata.json").read_text())
    assert metadata["precision"] == "bf16" and metadata["config"]["load_in_4bit"] is four_bit
    assert metadata["results"]["global_steps"] == 4


def test_unpacked_training_path(trained_home: Path, tmp_path: Path, tiny_model_dir: Path, cli) -> None:
    home = copy_home(trained_home, tmp_path / "home")
    write_cpu_config(home / "training/configs/np.yaml", tiny_model_dir, SHIPPED / "lora_light.yaml", packing=False,
                     max_steps=3, run_name_prefix="unpacked")  # fmt: skip
    result = cli("--home", str(home), "train", "--config", "np.yaml")
    assert result.exit_code == 0, result.stderr
    (adapter,) = list((home / "adapters").glob("unpacked_*"))
    metadata = json.loads((adapter / "metadata.json").read_text())
    assert metadata["packing"] is False and metadata["results"]["global_steps"] == 3
