"""Run one training: base model + LoRA through TRL's SFTTrainer, logs, checkpoints, the adapter and its metadata.

The data arrive pre-tokenized with our own assistant-only labels (see `milton_lora.chat.masks`); TRL keeps a `labels`
column as is and, with `packing`, packs best-fit-decreasing without padding. Packed rows carry position_ids and no
attention mask; the attention the plan chose (`milton_lora.train.attention`) runs each packed conversation on its own,
so they never attend to each other, and the loss head the plan chose (`milton_lora.train.loss`) scores only labelled
positions, without full logits, and in fp32 the LoRA layers run fused (`milton_lora.train.lora_kernel`) (tests compare
packed and unpacked losses and gradients, and fused and peft LoRA layers).

While it trains, `HealthCallback` watches the loss (a non-finite one stops the run: see `train/health.py`), and an
out-of-memory error goes on with a smaller batch (`train/oom.py`). The person's conversations trained on (the
export's train split, plus the replay of a `--from-production` run, which starts from production's weights) are
kept in `runs/<run_id>/train.jsonl`, the general questions mixed in in `general_replay.json` (`general_replay`).

A `method: dpo | kto` run (`milton_lora.train.preference`) trains TRL's DPOTrainer or KTOTrainer on the export's
preferences with the same arguments, callbacks (TensorBoard, health, early stopping, progress), checkpoints,
out-of-memory handling and record; its rows are padded pairs or completions, so TRL's own log-probability head
replaces the packed-row kernels.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

import yaml

from milton_lora.chat.conversations import Conversation, read_conversations
from milton_lora.chat.masks import TokenizedSplit, joined, marked_distilled, tokenize_split
from milton_lora.chat.tokenizer import load_tokenizer
from milton_lora.errors import MiltonError
from milton_lora.fileio import atomic_write_files, atomic_write_text, sha256_file, staged_new_directory
from milton_lora.libraries import library_versions, quiet_libraries
from milton_lora.lineage import ExportLineage, Lineage, LineMap
from milton_lora.record import TrainingRecord, TrainingSchedule, write_record
from milton_lora.settings import (
    EXPORT_METADATA,
    RUN_GENERAL_REPLAY,
    RUN_HEALTH,
    RUN_INIT_FROM,
    RUN_TRAIN_DATA,
    RUN_TRAIN_LINEAGE,
    RUN_TRAIN_PREFERENCES,
)
from milton_lora.train.attention import register_packed_attention
from milton_lora.train.checks import TrainPlan
from milton_lora.train.general_replay import GeneralReplay, general_replay_for, keep_general_replay
from milton_lora.train.health import HealthCallback
from milton_lora.train.lora_kernel import FUSED, install_fused_lora
from milton_lora.train.loss import CHUNKED, install_labelled_head
from milton_lora.train.oom import Fitted, train_within_memory
from milton_lora.train.outcome import base_model_loss, outcome_of
from milton_lora.train.packing import PACKING_STRATEGY, DistilledCollator, packed_rows, trainer_dataset
from milton_lora.train.preference import (
    SFT,
    PreparedPreferences,
    build_preference_trainer,
    keep_preferences,
    kept_preference_lineage,
    preference_schedule_inputs,
    preferences_file,
    prepare_preferences,
)
from milton_lora.train.progress import EvaluationClock, RichProgressCallback
from milton_lora.train.schedule import micro_batching, resolve_schedule

RUN_CONFIG = "config.yaml"
LOADER_WORKERS = 1
BASE_PREFIX = "eval_base"  # the base model's held-out metrics: eval_base_loss, eval/base_loss in TensorBoard


@dataclass(frozen=True)
class Prepared:
    """The conversations a run trains on, tokenized, with the tokenizer that did it."""

    tokenizer: Any
    conversations: list[Conversation]  # the person's (kept in train.jsonl)
    train: TokenizedSplit  # the person's conversations, then the general replay's
    test: TokenizedSplit
    general: GeneralReplay | None = None

    @property
    def has_eval(self) -> bool:
        return bool(self.test.examples)


@dataclass
class TrainResult:
    run_id: str
    adapter_dir: Path
    run_dir: Path
    record: TrainingRecord | None  # None on the other processes of a distributed run


def load_base_model(plan: TrainPlan) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    register_packed_attention()
    kwargs: dict[str, Any] = {
        "dtype": torch.bfloat16 if plan.precision == "bf16" else torch.float32,
        "attn_implementation": plan.attention,
    }
    if plan.config.load_in_4bit:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise MiltonError("load_in_4bit: true needs bitsandbytes: pip install 'milton-lora[qlora]'") from None
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if plan.precision == "bf16" else torch.float16,
        )
    model = AutoModelForCausalLM.from_pretrained(plan.base_model, **kwargs)
    if plan.config.load_in_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=plan.checkpointing.enabled)
    return model


def lora_config(plan: TrainPlan) -> Any:
    """A peft LoraConfig vLLM can load: bias none, no DoRA, no modules_to_save, integer alpha."""
    from peft import LoraConfig

    c = plan.config
    return LoraConfig(
        task_type="CAUSAL_LM",
        r=c.lora_r,
        lora_alpha=int(c.lora_alpha),
        lora_dropout=c.lora_dropout,
        target_modules=list(c.target_modules),
        bias="none",
        use_dora=False,
        modules_to_save=None,
    )


def training_conversations(plan: TrainPlan, resume: bool) -> list[Conversation]:
    """The export's train split plus the replayed ones; a resumed run trains on what it kept when it started."""
    kept = plan.run_dir / RUN_TRAIN_DATA
    if resume and kept.exists():
        return read_conversations(kept)
    return read_conversations(plan.train_file) + (plan.init_from.replay if plan.init_from else [])


def starting_point(plan: TrainPlan) -> dict[str, Any]:
    """`init_from` and `replay` of a `--from-production` run, as recorded when it started (also after `--resume`,
    which continues the run's checkpoint without re-planning); {} for a run that started from new weights."""
    recorded = plan.run_dir / RUN_INIT_FROM
    return json.loads(recorded.read_text()) if recorded.exists() else {}


def keep_training_conversations(plan: TrainPlan, conversations: list[Conversation], resume: bool) -> None:
    """Keep the run's conversations and, line for line, which conversation each is (a resumed run keeps both)."""
    if resume and (plan.run_dir / RUN_TRAIN_LINEAGE).exists():
        return
    lines = (json.dumps({"messages": messages}, ensure_ascii=False) + "\n" for messages in conversations)
    replay = plan.init_from.replay_lineage if plan.init_from else []
    line_map = LineMap(lines=[*export_lineage(plan).train, *replay])
    if len(line_map.lines) != len(conversations):  # an export made before lineage was recorded
        line_map = LineMap()
    atomic_write_files(
        {
            plan.run_dir / RUN_TRAIN_DATA: "".join(lines).encode(),
            plan.run_dir / RUN_TRAIN_LINEAGE: line_map.model_dump_json(indent=2).encode(),
        }
    )


def export_lineage(plan: TrainPlan) -> ExportLineage:
    """The export's splits, line for line (empty for an export made before lineage was recorded)."""
    path = plan.train_file.parent / EXPORT_METADATA
    recorded = json.loads(path.read_text()).get("lineage") if path.exists() else None
    return ExportLineage.model_validate(recorded or {})


def run_lineage(plan: TrainPlan, start: dict[str, Any]) -> Lineage:
    """What the adapter saw: its kept lines (export train split, then replay), the held-out split, its parent."""
    if plan.config.method == SFT:
        trained = LineMap.model_validate_json((plan.run_dir / RUN_TRAIN_LINEAGE).read_text()).lines
    else:  # the conversations of the preferences it learned from; a start adapter's are inherited
        trained = kept_preference_lineage(plan.run_dir)
    continued = start.get("continued") or {}
    return Lineage(
        export_created_at=export_metadata_of(plan).get("created_at"),
        train=trained,
        replayed=len(continued.get("replay") or []),
        test=export_lineage(plan).test,
        parent=(start.get("init_from") or {}).get("run_id"),
        inherited=continued.get("inherited") or [],
    )


def tokenize_plan_data(plan: TrainPlan, tokenizer: Any, conversations: list[Conversation],
                       general: GeneralReplay | None) -> tuple[TokenizedSplit, TokenizedSplit]:  # fmt: skip
    """The person's conversations then the general replay's, tokenized; with `general_replay_target: distribution`
    the general replay's labelled tokens are marked DISTILLED (trained towards the base's distributions)."""
    length = plan.config.max_seq_length
    train = tokenize_split(tokenizer, conversations, length)
    if general is not None:
        replay = tokenize_split(tokenizer, general.conversations, length)
        if plan.config.distils_general_replay:
            train, replay = marked_distilled(train, False), marked_distilled(replay, True)
        train = joined(train, replay)
    test = tokenize_split(tokenizer, read_conversations(plan.test_file), length)
    if not train.examples:
        raise MiltonError(f"{plan.train_file}: no conversation has an assistant token left to train on")
    return train, test


def prepare_data(plan: TrainPlan, resume: bool) -> Prepared:
    tokenizer = load_tokenizer(plan.base_model)
    conversations = training_conversations(plan, resume)
    general = general_replay_for(plan.run_dir / RUN_GENERAL_REPLAY, plan.planned_general_replay, plan.general_prompts,
                                 plan.config, plan.base_model, conversations, resume)  # fmt: skip
    return Prepared(tokenizer, conversations, *tokenize_plan_data(plan, tokenizer, conversations, general), general)


def size_schedule(plan: TrainPlan, resume: bool) -> TrainPlan:
    """The plan with its schedule sized to the data it trains on (`milton_lora.train.schedule`): the resolved
    values replace the config's, and the tokenized data travel with it to `run_training`."""
    quiet_libraries()
    if plan.config.method != SFT:
        return size_preference_schedule(plan, resume)
    prepared = prepare_data(plan, resume)
    train, config = prepared.train, plan.config
    rows = packed_rows(train, config.max_seq_length) if config.packing else len(train.examples)
    schedule = resolve_schedule(config, rows, train.tokens, train.labelled_tokens, bool(prepared.test.examples))
    return replace(plan, config=schedule.config, schedule=schedule, prepared=prepared,
                   warnings=plan.warnings + schedule.warnings)  # fmt: skip


def size_preference_schedule(plan: TrainPlan, resume: bool) -> TrainPlan:
    """A dpo/kto plan's schedule, sized to its preference rows (never packed)."""
    config = plan.config.model_copy(update={"packing": False})
    prepared = prepare_preferences(config, load_tokenizer(plan.base_model), preferences_file(plan.train_file),
                                   plan.run_dir / RUN_TRAIN_PREFERENCES, resume)  # fmt: skip
    schedule = resolve_schedule(config, **preference_schedule_inputs(config, prepared))
    warnings = plan.warnings + schedule.warnings
    if prepared.too_long:
        warnings.append(f"{prepared.too_long} preference prompts fill max_seq_length {config.max_seq_length} by "
                        "themselves; TRL leaves them out (raise max_seq_length)")  # fmt: skip
    return replace(plan, config=schedule.config, schedule=schedule, prepared=prepared, warnings=warnings)


def trainer_arguments(plan: TrainPlan, has_eval: bool) -> dict[str, Any]:
    """The transformers arguments every method trains with, for the plan's (resolved) config. With a held-out split,
    checkpoints are saved at each evaluation and the one with the lowest held-out loss is loaded at the end
    (`load_best_model_at_end`), which early stopping needs too; `save_steps` set to a multiple of eval_steps saves
    less often."""
    c = plan.config
    micro_batch, accumulation = micro_batching(c)
    if has_eval:
        save_every = c.save_steps if c.save_steps and c.save_steps % c.eval_steps == 0 else c.eval_steps
        eval_and_save: dict[str, Any] = {"eval_strategy": "steps", "eval_steps": c.eval_steps, "save_strategy":
                                         "steps", "save_steps": save_every, "load_best_model_at_end": True,
                                         "metric_for_best_model": "eval_loss", "greater_is_better": False}  # fmt: skip
    else:
        eval_and_save = {"eval_strategy": "no", "save_strategy": "steps" if c.save_steps else "epoch",
                         "save_steps": c.save_steps or 500}  # fmt: skip
    return dict(
        output_dir=str(plan.run_dir / "checkpoints"),
        learning_rate=c.learning_rate,
        num_train_epochs=c.num_epochs,
        max_steps=c.max_steps,
        per_device_train_batch_size=micro_batch,
        per_device_eval_batch_size=micro_batch,
        gradient_accumulation_steps=accumulation,
        lr_scheduler_type=c.lr_scheduler_type,
        warmup_steps=c.warmup_steps or 0,
        max_grad_norm=c.max_grad_norm,
        bf16=plan.precision == "bf16",
        gradient_checkpointing=plan.checkpointing.enabled,
        gradient_checkpointing_kwargs={"use_reentrant": False} if plan.checkpointing.enabled else None,
        **eval_and_save,
        save_total_limit=c.save_total_limit,
        logging_steps=c.logging_steps,
        logging_first_step=True,
        seed=c.seed,
        data_seed=c.seed,
        max_length=c.max_seq_length,
        report_to="none",
        logging_nan_inf_filter=False,  # a nan loss must reach the logs (and HealthCallback), not be averaged away
        disable_tqdm=True,
        include_num_input_tokens_seen="non_padding",
        use_cpu=not plan.cuda,  # also what makes accelerate use gloo for a multi-process CPU run
        dataloader_pin_memory=plan.cuda,
        # Collation runs in a worker process with prefetched batches, off the training loop; in the training
        # process its small multi-threaded ops waited ~40 ms per step for a second core on a busy 2-core machine.
        dataloader_num_workers=LOADER_WORKERS,
        dataloader_persistent_workers=True,
        save_only_model=False,
    )


def sft_config(plan: TrainPlan, has_eval: bool) -> Any:
    """TRL's SFT arguments: packed best-fit-decreasing without padding, on our pre-tokenized labels."""
    from trl import SFTConfig

    c = plan.config
    return SFTConfig(
        **trainer_arguments(plan, has_eval),
        packing=c.packing,
        packing_strategy=PACKING_STRATEGY,
        padding_free=c.packing,
        dataset_kwargs={"skip_prepare_dataset": True},  # tokenized, and packed by `trainer_dataset`
        remove_unused_columns=False,
    )


def build_trainer(plan: TrainPlan, model: Any, tokenizer: Any, train: TokenizedSplit, test: TokenizedSplit,
                  callbacks: list[Any]) -> Any:  # fmt: skip
    from trl import SFTTrainer

    length, packing = plan.config.max_seq_length, plan.config.packing
    eval_dataset = trainer_dataset(test, length, packing) if test.examples else None
    trainer = SFTTrainer(
        model=start_model(plan, model),
        args=sft_config(plan, eval_dataset is not None),
        train_dataset=trainer_dataset(train, length, packing),
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=None if plan.init_from is not None else lora_config(plan),
        callbacks=callbacks,
    )
    trainer.data_collator = DistilledCollator(trainer.data_collator)
    if plan.loss == CHUNKED:
        install_labelled_head(trainer.model.get_base_model(), adapter_off=trainer.model.disable_adapter)
    if plan.lora == FUSED:
        install_fused_lora(trainer.model)
    return trainer


def start_model(plan: TrainPlan, model: Any) -> Any:
    """The base model, or with the start adapter's LoRA weights, trainable (production's for --from-production: the
    same rank, alpha and modules, checked by the plan)."""
    if plan.init_from is None:
        return model
    from peft import PeftModel

    return PeftModel.from_pretrained(model, plan.init_from.adapter_dir, is_trainable=True)


def build_any_trainer(plan: TrainPlan, prepared: Any, callbacks: list[Any]) -> Any:
    """The trainer of the plan's method, on a freshly loaded base model."""
    model = load_base_model(plan)
    if plan.config.method == SFT:
        return build_trainer(plan, model, prepared.tokenizer, prepared.train, prepared.test, callbacks)
    peft_config = None if plan.init_from is not None else lora_config(plan)
    return build_preference_trainer(plan.config, start_model(plan, model), prepared,
                                    trainer_arguments(plan, prepared.has_eval), peft_config, callbacks)  # fmt: skip


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint. A process killed while saving leaves a folder without a readable
    trainer_state.json (transformers writes it last), which is skipped."""
    checkpoints = sorted(
        (p for p in (run_dir / "checkpoints").glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
        reverse=True,
    )
    for checkpoint in checkpoints:
        try:
            json.loads((checkpoint / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        return checkpoint
    return None


def run_training(plan: TrainPlan, resume: bool = False, show_progress: bool = True) -> TrainResult:
    """Train, write runs/<run_id>/ as it goes and adapters/<run_id>/ (atomically) at the end."""
    import torch
    from accelerate import PartialState
    from torch.utils.tensorboard import SummaryWriter
    from transformers import EarlyStoppingCallback, PrinterCallback
    from transformers.integrations import TensorBoardCallback

    quiet_libraries()
    torch.set_num_threads(plan.threads)

    if plan.adapter_dir.exists():
        raise MiltonError(f"{plan.adapter_dir}: already exists; runs are never overwritten")
    checkpoint = latest_checkpoint(plan.run_dir) if resume else None
    if resume and checkpoint is None:
        raise MiltonError(f"{plan.run_dir}: no checkpoint to resume from; start a new run instead")
    plan.run_dir.mkdir(parents=True, exist_ok=True)

    started = time.time()
    if plan.schedule is None:
        plan = size_schedule(plan, resume)
    prepared: Prepared | PreparedPreferences = plan.prepared
    sft, has_eval = plan.config.method == SFT, prepared.has_eval
    main_process = PartialState().is_main_process
    if main_process:
        if isinstance(prepared, Prepared):
            keep_training_conversations(plan, prepared.conversations, resume)
            keep_general_replay(plan.run_dir / RUN_GENERAL_REPLAY, prepared.general, plan.planned_general_replay)
        else:
            keep_preferences(plan.run_dir, plan.config.method, prepared, preferences_file(plan.train_file),
                             export_lineage(plan), plan.init_from.run_dir if plan.init_from else None,
                             resume)  # fmt: skip
        if plan.init_from is not None:
            atomic_write_text(plan.run_dir / RUN_INIT_FROM, json.dumps(plan.init_from.record(), indent=2) + "\n")
    writer = SummaryWriter(log_dir=str(plan.run_dir / "logs")) if main_process else None
    health = HealthCallback(plan.config)
    clock = EvaluationClock()
    callbacks: list[Any] = [TensorBoardCallback(writer)] if writer else []
    callbacks += [health, clock]
    if has_eval and plan.config.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(plan.config.early_stopping_patience))
    progress = RichProgressCallback(health=health.monitor) if show_progress and main_process else None
    callbacks += [progress] if progress else []

    base_loss: list[float] = []

    def start(attempt: TrainPlan) -> Any:
        atomic_write_text(attempt.run_dir / RUN_CONFIG, yaml.safe_dump(attempt.config.model_dump(), sort_keys=False))
        trainer = build_any_trainer(attempt, prepared, callbacks)
        trainer.remove_callback(PrinterCallback)  # raw log dicts; the progress bar and summary replace them
        # Once per run, also when an out-of-memory error restarts it. A preference run's held-out loss is its
        # DPO/KTO loss, which has no base-model counterpart (the base is the reference, or close to it).
        if sft and has_eval and not base_loss:
            base_loss.append(base_model_loss(trainer, BASE_PREFIX))
        return trainer

    fitted = train_fitting_memory(plan, start, checkpoint, progress, main_process)
    trainer, output, plan = fitted.trainer, fitted.output, fitted.plan
    if health.monitor.stopped:
        stop_unhealthy_run(plan, health, writer)
    eval_seconds = clock.seconds
    final_eval = final_evaluation(trainer) if has_eval else {}
    state = trainer.state
    outcome = outcome_of(state.log_history, state.global_step, state.max_steps, state.best_global_step,
                         plan.config.early_stopping_patience if has_eval else 0,
                         base_loss[0] if base_loss else None)  # fmt: skip
    health.monitor.compare_with_base(final_eval.get("eval_loss"), outcome.base_eval_loss, outcome.best_step)
    train_seconds = time.time() - started
    if writer is None:
        return TrainResult(plan.run_id, plan.adapter_dir, plan.run_dir, None)

    record = build_record(plan, trainer, output, final_eval, prepared, train_seconds, eval_seconds)
    record.health = health.monitor.record()
    record.oom_retries = [retry.as_dict() for retry in fitted.retries]
    record.results = record.results.model_copy(update=outcome.as_dict())
    record.schedule = TrainingSchedule(**plan.schedule.record()) if plan.schedule else None
    with staged_new_directory(plan.adapter_dir) as staging:
        # Only the trained adapter: a run continuing one also holds TRL's frozen copy of it ("ref").
        trainer.model.save_pretrained(staging, selected_adapters=["default"])
        write_record(staging, record)
    writer.close()
    return TrainResult(plan.run_id, plan.adapter_dir, plan.run_dir, record)


def train_fitting_memory(plan: TrainPlan, start: Any, checkpoint: Path | None, progress: RichProgressCallback | None,
                         main_process: bool) -> Fitted:  # fmt: skip
    """trainer.train(), going on with a smaller batch after an out-of-memory error (`milton_lora.train.oom`)."""
    from rich.console import Console
    from rich.text import Text

    def notify(message: str) -> None:
        if main_process:
            (progress.console if progress else Console(stderr=True)).print(Text("warning: ", "bold yellow") + message)

    try:
        return train_within_memory(plan, start, checkpoint, micro_batching, latest_checkpoint, notify)
    finally:
        if progress:
            progress.close()


def stop_unhealthy_run(plan: TrainPlan, health: HealthCallback, writer: Any) -> NoReturn:
    """A non-finite loss: keep runs/<run_id>/ (logs, checkpoints, health.json), write no adapter, raise."""
    if writer is not None:
        atomic_write_text(plan.run_dir / RUN_HEALTH, json.dumps(health.monitor.record(health.last_good_checkpoint()),
                                                                indent=2) + "\n")  # fmt: skip
        writer.close()
    raise MiltonError(health.stop_message(plan.run_dir))


def final_evaluation(trainer: Any) -> dict[str, float]:
    """The held-out metrics of the weights written as the adapter: those of the evaluation `train()` ran at the
    best checkpoint's step (loaded at the end), or at its last step, else a new evaluation."""
    state = trainer.state
    step = state.best_global_step or state.global_step
    logged = next((log for log in reversed(state.log_history) if "eval_loss" in log and log.get("step") == step), None)
    return logged if logged is not None else trainer.evaluate()


def build_record(plan: TrainPlan, trainer: Any, output: Any, final_eval: dict[str, float],
                 prepared: Prepared | PreparedPreferences, train_seconds: float,
                 eval_seconds: float) -> TrainingRecord:  # fmt: skip
    """`train_seconds`: the whole run; `eval_seconds`: the evaluations inside `train()`. tokens_per_second is the
    training throughput: tokens seen over `train_runtime` less those evaluations."""
    state = trainer.state
    train_losses = [log["loss"] for log in state.log_history if "loss" in log]
    tokens_seen = int(state.num_input_tokens_seen)
    runtime = output.metrics.get("train_runtime")
    training_only = runtime - eval_seconds if runtime else None
    trainable, total = trainer.model.get_nb_trainable_parameters()
    start = starting_point(plan)
    return TrainingRecord.model_validate({
        "run_id": plan.run_id,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config_path": str(plan.config_path),
        "config": plan.config.model_dump(),
        "base_model_path": str(plan.base_model),
        "base_model_config_sha256": sha256_file(plan.base_model / "config.json"),
        "method": plan.config.method,
        "preferences": plan.preferences.record() if plan.preferences else None,
        "data": data_provenance(plan, prepared),
        "precision": plan.precision,
        "packing": plan.config.packing,
        "kernels": {
            "attention": plan.attention,
            "loss": plan.loss,
            "lora": plan.lora,
            "gradient_checkpointing": plan.checkpointing.enabled,
        },
        "world_size": trainer.args.world_size,
        "git_commit": plan.git_commit,
        "libraries": library_versions(),
        "timings": {
            "train_seconds": round(train_seconds, 2),
            "train_runtime": runtime,
            "eval_seconds_in_training": round(eval_seconds, 2),
        },
        "results": {
            "global_steps": state.global_step,
            "final_train_loss": train_losses[-1] if train_losses else None,
            "mean_train_loss": mean_logged_loss(state.log_history),
            "final_eval_loss": final_eval.get("eval_loss"),
            "tokens_seen": tokens_seen,
            "tokens_per_second": round(tokens_seen / training_only, 1) if training_only else None,
        },
        "trainable_parameters": trainable,
        "total_parameters": total,
        **{key: value for key, value in start.items() if key in ("init_from", "replay")},
        "general_replay": prepared.general.record() if isinstance(prepared, Prepared) and prepared.general else None,
        "lineage": run_lineage(plan, start),
    })  # fmt: skip


def mean_logged_loss(history: list[dict[str, Any]]) -> float | None:
    """The train loss averaged over every step of the run. The trainer's own mean covers only its last
    `train()` call, which after `--resume` or an out-of-memory restart is part of the run."""
    total, steps, last_step = 0.0, 0, 0
    for entry in history:
        if "loss" in entry:
            span = entry["step"] - last_step  # a logged loss is the mean over the steps since the previous one
            total, steps, last_step = total + entry["loss"] * span, steps + span, entry["step"]
    return total / steps if steps else None


def export_metadata_of(plan: TrainPlan) -> dict[str, Any]:
    path = plan.train_file.parent / EXPORT_METADATA
    return json.loads(path.read_text()) if path.exists() else {}


def data_provenance(plan: TrainPlan, prepared: Prepared | PreparedPreferences) -> dict[str, Any]:
    export_metadata = export_metadata_of(plan)
    exported = {
        "export_files_sha256": export_metadata.get("files"),
        "export_created_at": export_metadata.get("created_at"),
        "export_window_days": export_metadata.get("window_days"),
    }
    splits = {  # a preference run's too: evaluation scores the held-out chats and reads the preferences beside them
        "train_file": str(plan.train_file),
        "test_file": str(plan.test_file),
        "train_sha256": sha256_file(plan.train_file),
        "test_sha256": sha256_file(plan.test_file),
        **exported,
    }
    if isinstance(prepared, PreparedPreferences):
        kept = plan.run_dir / RUN_TRAIN_PREFERENCES
        return {**splits, "trained_file": str(kept), "trained_sha256": sha256_file(kept),
                "train_examples": len(prepared.rows), "test_examples": len(prepared.test_rows),
                "train_tokens": prepared.input_tokens, "train_labelled_tokens": prepared.completion_tokens}  # fmt: skip
    train, test = prepared.train, prepared.test
    return {
        **splits,
        "trained_file": str(plan.run_dir / RUN_TRAIN_DATA),
        "trained_sha256": sha256_file(plan.run_dir / RUN_TRAIN_DATA),
        "train_examples": len(train.examples),
        "test_examples": len(test.examples),
        "train_tokens": train.tokens,
        "train_labelled_tokens": train.labelled_tokens,
        "truncated_examples": train.truncated + test.truncated,
        "dropped_without_labels": train.dropped_no_labels + test.dropped_no_labels,
        "chat_template_notes": train.notes,
    }
