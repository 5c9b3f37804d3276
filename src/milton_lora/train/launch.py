"""From the `train` command's flags to a checked plan, and from a finished run to a registered adapter.

A new run gets a fresh run id (agreed by every process of a torchrun job); `--resume RUN_ID` reads the
config that run saved in `runs/<run_id>/config.yaml`; `--from-production` starts from the production
adapter and replays older conversations (`milton_lora.train.replay`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from milton_lora.config import TrainConfig, load_model
from milton_lora.errors import MiltonError
from milton_lora.registry import Registry, validate_run_id
from milton_lora.settings import Settings
from milton_lora.train.checks import TrainPlan, claim_run_id, make_plan, new_run_id, resolve_config_path
from milton_lora.train.replay import plan_from_production
from milton_lora.train.runner import RUN_CONFIG, TrainResult, run_training, size_schedule


def plan_training(settings: Settings, config: Path | None, resume: str | None, from_production: bool = False,
                  claim: bool = True) -> TrainPlan:  # fmt: skip
    """Resolve the config (or the interrupted run's), pick the run id, run every safety check; with
    `from_production`, check that production can be continued and choose the conversations to replay; size the
    schedule to the tokenized data (`milton_lora.train.schedule`).

    `claim` reserves a new run's id by creating its runs folder (a dry run only looks); a plan that fails
    its checks gives the id back."""
    if resume is not None and from_production:
        raise MiltonError("train: --resume continues the run's own checkpoint; drop --from-production")
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
        if from_production:
            plan.init_from = plan_from_production(Registry.of(settings), plan.config, plan.base_model,
                                                  plan.train_file, plan.test_file)  # fmt: skip
        return size_schedule(plan, resume is not None)
    except MiltonError:
        if claimed is not None:
            (settings.runs_dir / claimed).rmdir()
        raise


def production_is_tainted(settings: Settings) -> bool:
    """Whether the production adapter learned a forgotten conversation (then nothing may continue it)."""
    production = Registry.of(settings).load().production()
    return production is not None and production.tainted is not None


def train_and_register(settings: Settings, plan: TrainPlan, resume: bool) -> TrainResult:
    """Train; on the main process register the adapter as `training` (other ranks return empty metadata)."""
    result = run_training(plan, resume=resume)
    if result.record is not None:
        from_production = " --from-production" if result.record.init_from is not None else ""
        Registry.of(settings).register(
            plan.run_id, str(plan.base_model), f"train --config {plan.config_path}{from_production}"
        )
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
