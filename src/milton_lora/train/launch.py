"""From the `train` command's flags to a checked plan, and from a finished run to a registered adapter.

A new run gets a fresh run id (agreed by every process of a torchrun job); `--resume RUN_ID` reads the
config that run saved in `runs/<run_id>/config.yaml`; `--from-production` starts from the production
adapter and replays older conversations (`milton_lora.train.replay`).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from milton_lora.config import TrainConfig, load_model
from milton_lora.errors import MiltonError
from milton_lora.registry import Registry, validate_run_id
from milton_lora.settings import ADAPTER_CONFIG, RUN_INIT_FROM, Settings
from milton_lora.train.checks import TrainPlan, claim_run_id, make_plan, new_run_id, resolve_config_path
from milton_lora.train.preference import DPO, SFT, count_preferences, preferences_file
from milton_lora.train.replay import InitFromProduction, plan_continuation, plan_from_production
from milton_lora.train.runner import RUN_CONFIG, TrainResult, run_training, size_schedule


def plan_training(settings: Settings, config: Path | None, resume: str | None, from_production: bool = False,
                  claim: bool = True, init_from: str | None = None) -> TrainPlan:  # fmt: skip
    """Resolve the config (or the interrupted run's), pick the run id, run every safety check; with
    `from_production` (or the config's `init_from: production`), check that production can be continued and choose
    the conversations to replay; size the schedule to the tokenized data (`milton_lora.train.schedule`).

    A dpo/kto run starts from adapter `init_from` (a run id or alias; else production with `from_production` or
    `init_from: production`, else new weights) and takes that adapter's base model and LoRA shape.

    `claim` reserves a new run's id by creating its runs folder (a dry run only looks); a plan that fails
    its checks gives the id back."""
    if resume is not None and (from_production or init_from):
        raise MiltonError("train: --resume continues the run's own checkpoint; drop --from-production/--init-from")
    if resume is not None:
        run_id = validate_run_id(resume)
        config_path = settings.runs_dir / run_id / RUN_CONFIG
        if not config_path.exists():
            raise MiltonError(f"{config_path}: not found; --resume takes the run id of an interrupted run")
    elif config is None:
        raise MiltonError("train: pass --config (e.g. --config training/configs/lora_default.yaml)")
    else:
        config_path = resolve_config_path(settings, config)
    train_config = load_model(config_path, TrainConfig)
    sft = train_config.method == SFT
    if init_from is not None and sft:
        raise MiltonError(f"train: --init-from is for method: dpo or kto ({config_path} says sft); "
                          "an sft run continues production with --from-production")  # fmt: skip
    from_production = resume is None and (from_production or train_config.init_from == "production")
    start, train_config = preference_start(settings, train_config, resume, init_from or
                                           ("production" if from_production and not sft else None))  # fmt: skip
    cuda, cuda_bf16, processes = accelerator_support()
    claimed = None
    if resume is None:
        taken = [settings.adapters_dir, settings.runs_dir]
        if claim and is_main_process():
            run_id = claimed = claim_run_id(train_config.run_name_prefix, taken, settings.runs_dir, datetime.now())
        else:
            run_id = new_run_id(train_config.run_name_prefix, taken, datetime.now())
        run_id = agree_across_processes(run_id)
    try:
        plan = make_plan(settings, train_config, config_path, run_id, cuda, cuda_bf16, processes)
        if from_production and sft:
            plan.init_from = plan_from_production(Registry.of(settings), plan.config, plan.base_model,
                                                  plan.train_file, plan.test_file)  # fmt: skip
        plan.init_from = plan.init_from or start
        return size_schedule(plan, resume is not None)
    except MiltonError:
        if claimed is not None:
            (settings.runs_dir / claimed).rmdir()
        raise


def preference_start(settings: Settings, config: TrainConfig, resume: str | None, name: str | None
                     ) -> tuple[InitFromProduction | None, TrainConfig]:  # fmt: skip
    """The adapter a dpo/kto run continues (a resumed one: the one it started from, so its reference stays the
    same), and the config with that adapter's base model and LoRA shape."""
    if config.method == SFT:
        return None, config
    if resume is not None:
        recorded = settings.runs_dir / validate_run_id(resume) / RUN_INIT_FROM
        name = json.loads(recorded.read_text())["init_from"]["run_id"] if recorded.exists() else None
    if name is None:
        return None, config
    start, record = plan_continuation(Registry.of(settings), name, "--init-from" if resume is None else "--resume")
    lora = json.loads((start.adapter_dir / ADAPTER_CONFIG).read_text())
    targets = lora["target_modules"]
    shape = {"base_model_path": str(record.base_model or config.base_model_path), "lora_r": lora["r"],
             "lora_alpha": lora["lora_alpha"], "target_modules": [targets] if isinstance(targets, str) else
             sorted(targets)}  # fmt: skip
    return start, config.model_copy(update=shape)


def preference_stage(settings: Settings, config: Path | None) -> tuple[Path | None, str]:
    """Whether `cycle` trains its preference stage after SFT: the preference config to train with, or None; and why.
    It runs when the export's train split holds the config's `min_train_preferences` (the export covers the cycle's
    window: these are the new signals)."""
    if config is None:
        return None, "off (--no-preferences)"
    path = resolve_config_path(settings, config)
    train_config = load_model(path, TrainConfig)
    if train_config.method == SFT:
        raise MiltonError(f"{path}: method: sft; the preference stage needs a dpo or kto config (lora_dpo.yaml)")
    counts = count_preferences(preferences_file(settings.export_train_path))
    found, needed = counts.usable(train_config.method), train_config.min_train_preferences
    if found < needed:
        what = "pairs" if train_config.method == DPO else "labels and pairs"
        return None, (f"skipped: {found} train-split {what} in {counts.file}, {needed} needed "
                      f"(min_train_preferences in {path})")  # fmt: skip
    return path, f"{train_config.method} on {counts.describe(train_config.method)} ({path}), continuing the new adapter"


def production_is_tainted(settings: Settings) -> bool:
    """Whether the production adapter learned a forgotten conversation (then nothing may continue it)."""
    production = Registry.of(settings).load().production()
    return production is not None and production.tainted is not None


def train_and_register(settings: Settings, plan: TrainPlan, resume: bool) -> TrainResult:
    """Train; on the main process register the adapter as `training` (other ranks return empty metadata)."""
    result = run_training(plan, resume=resume)
    if result.record is not None:
        start = result.record.init_from
        flag = "" if start is None else f" --init-from {start.run_id}"
        flag = " --from-production" if start is not None and plan.config.method == SFT else flag
        Registry.of(settings).register(plan.run_id, str(plan.base_model), f"train --config {plan.config_path}{flag}")
    return result


def accelerator_support() -> tuple[bool, bool, int]:
    """(CUDA available, CUDA with fast bf16, processes in the job), initialising a distributed group when
    launched by torchrun."""
    import torch
    from accelerate import PartialState

    cuda = torch.cuda.is_available()
    state = PartialState(cpu=not cuda)
    return cuda, cuda and torch.cuda.is_bf16_supported(), state.num_processes


def is_main_process() -> bool:
    from accelerate import PartialState

    return PartialState().is_main_process


def agree_across_processes(value: str) -> str:
    """Rank 0's value on every rank, so all processes of a torchrun job write the same run."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return str(holder[0])
