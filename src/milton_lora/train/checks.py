"""Safety checks run before any heavy work, and the plan `--dry-run` prints.

Problems that would waste GPU hours (no model, no data, no disk, no chat template or one whose assistant
turns cannot be marked, too few preferences for a dpo/kto run) stop the run with every problem listed at once;
a dirty git tree, a bf16 request on a machine without bf16, or a template without a system role (folded into the
first user turn) are warnings. The plan also records what was chosen for this machine (`milton_lora.train.tuning`,
`attention`, `loss`, `lora_kernel`): gradient checkpointing, the attention, loss and LoRA kernels, CPU threads.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from milton_lora.chat.template import ChatFormat
from milton_lora.config import TrainConfig, load_model
from milton_lora.errors import MiltonError
from milton_lora.registry import validate_run_id
from milton_lora.settings import Settings, shipped
from milton_lora.train.attention import attention_implementation, flash_attn_installed
from milton_lora.train.general_replay import GENERAL_PROMPTS
from milton_lora.train.lora_kernel import FUSED, PEFT, lora_kernel
from milton_lora.train.loss import loss_kernel, transforms_logits, triton_installed
from milton_lora.train.preference import SFT, TRL_HEAD, PreferenceCounts, check_preferences
from milton_lora.train.replay import InitFromProduction
from milton_lora.train.schedule import Schedule
from milton_lora.train.tuning import CheckpointingChoice, choose_checkpointing, cpu_threads, free_memory_bytes

METHODS = {
    "sft": "sft (imitate the kept replies)",
    "dpo": "dpo (chosen over rejected replies, TRL's DPOTrainer)",
    "kto": "kto (wanted and unwanted replies, TRL's KTOTrainer)",
}


@dataclass
class TrainPlan:
    """Everything a run needs, resolved and checked."""

    config: TrainConfig
    config_path: Path
    run_id: str
    base_model: Path
    train_file: Path
    test_file: Path
    adapter_dir: Path
    run_dir: Path
    precision: str
    cuda: bool
    train_conversations: int
    test_conversations: int
    free_disk_gb: float
    git_commit: str | None
    checkpointing: CheckpointingChoice
    attention: str
    loss: str
    lora: str
    threads: int
    warnings: list[str] = field(default_factory=list)
    init_from: InitFromProduction | None = None  # --from-production; a dpo/kto run's start adapter
    preferences: PreferenceCounts | None = None  # what a dpo/kto run learns from
    general_prompts: Path | None = None  # the general replay's pool, when the run mixes one in
    planned_general_replay: Path | None = None  # where a plan keeps the general replay it generated
    schedule: Schedule | None = None  # sized to the tokenized data (`runner.size_schedule`)
    prepared: Any = field(default=None, repr=False)  # the tokenized data it was sized on (`runner.Prepared`)

    def rows(self) -> list[tuple[str, str]]:
        c = self.config
        data = ("train / test conversations", f"{self.train_conversations} / {self.test_conversations}")
        if self.preferences is not None:
            data = ("train / test preferences", f"{self.preferences.describe(c.method)} ({self.preferences.file})")
        return [
            ("run id", self.run_id),
            ("method", METHODS[c.method] + ("" if c.method == SFT else f", beta {c.beta:g}")),
            ("base model", str(self.base_model)),
            data,
            ("LoRA", f"r={c.lora_r} alpha={c.lora_alpha} dropout={c.lora_dropout} on {', '.join(c.target_modules)}"),
            *(
                self.schedule.rows()
                if self.schedule
                else [
                    ("batch", f"{c.per_device_train_batch_size} x {c.gradient_accumulation_steps} accumulation"),
                    (
                        "length",
                        f"{c.num_epochs:g} epochs (at least {c.min_steps} steps)"
                        if c.max_steps <= 0
                        else f"{c.max_steps} steps",
                    ),
                ]
            ),
            (
                "device",
                ("CUDA" if self.cuda else "CPU") + f", {self.precision}" + (", 4-bit base" if c.load_in_4bit else ""),
            ),
            ("packing", "padding-free, per-conversation attention" if c.packing else "off (padding)"),
            ("attention, loss", f"{self.attention}, {self.loss} (labelled positions only, no full logits)"),
            *([("reference", self.reference())] if c.method != SFT else []),
            ("LoRA layers", "fused forward and backward" if self.lora == FUSED else "peft's forward"),
            ("gradient checkpointing", self.checkpointing.reason),
            ("CPU threads", str(self.threads)),
            ("adapter", str(self.adapter_dir)),
            ("logs, checkpoints", str(self.run_dir)),
            ("free disk", f"{self.free_disk_gb:.1f} GB"),
            ("start from", self.init_from.describe() if self.init_from else "new LoRA weights"),
            *([("general replay", self.prepared.general.describe())] if self.general_replay() else []),
        ]

    def general_replay(self) -> bool:
        return getattr(self.prepared, "general", None) is not None

    def reference(self) -> str:
        """What a dpo/kto run's rewards are measured against: never a second model in memory."""
        if self.init_from is not None:
            return f"{self.init_from.run_id}'s LoRA weights, frozen (TRL's 'ref' adapter on the same base weights)"
        return "the base model: the same weights with the adapter disabled"


def resolve_config_path(settings: Settings, given: Path) -> Path:
    """Under MILTON_HOME (where the documented relative paths live), else as given, else by name in
    $MILTON_HOME/training/configs/, else among the configs shipped in the package."""
    candidates = (settings.resolve(given), given, settings.configs_dir / given.name, shipped("configs", given.name))
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise MiltonError(f"{given}: config not found (looked in ., $MILTON_HOME and {settings.configs_dir})")


def base_model_of(settings: Settings, config: Path) -> Path:
    """The base model folder a training config names (resolved as `train --config` resolves it)."""
    return settings.resolve(load_model(resolve_config_path(settings, config), TrainConfig).base_model_path)


def new_run_id(prefix: str, taken: list[Path], now: datetime) -> str:
    """`<prefix>_YYYYMMDD_HHMMSS`, one second later while that id is already used."""
    while True:
        run_id = validate_run_id(f"{prefix}_{now:%Y%m%d_%H%M%S}")
        if not any((directory / run_id).exists() for directory in taken):
            return run_id
        now += timedelta(seconds=1)


def claim_run_id(prefix: str, taken: list[Path], runs_dir: Path, now: datetime) -> str:
    """A new run id whose `runs/<run_id>/` this process created itself: two trainings started in the same
    second cannot share one (mkdir is atomic; the one that loses takes the next free second)."""
    while True:
        run_id = new_run_id(prefix, taken, now)
        try:
            (runs_dir / run_id).mkdir(parents=True)
            return run_id
        except FileExistsError:
            continue  # taken meanwhile: new_run_id now skips it


def make_plan(settings: Settings, config: TrainConfig, config_path: Path, run_id: str, cuda: bool,
              cuda_bf16: bool, processes: int = 1, free_memory: int | None = None) -> TrainPlan:  # fmt: skip
    """Resolve paths and run every check; raise one MiltonError listing all blocking problems.

    `free_memory` (bytes for one process) is measured when not given."""
    problems: list[str] = []
    warnings: list[str] = []
    base = settings.resolve(config.base_model_path)
    model_config = _check_base_model(base, problems, warnings)
    if model_config is not None:
        _check_target_modules(model_config, config.target_modules, problems, warnings)
        if config.distils_general_replay and transforms_logits(model_config):
            warnings.append("general_replay_target: distribution needs plain logits and this base model transforms "
                            "them (softcapping or scaling): its general replay trains on the answers' tokens "
                            "(set general_replay_target: answer to make that explicit)")  # fmt: skip
    train_file, test_file = train_and_test_files(settings, config)
    train_count = _count_lines(train_file, problems)
    test_count = _count_lines(test_file, problems)
    preferences = check_preferences(config, train_file, problems) if config.method != SFT else None
    if config.method == SFT and train_file.exists() and train_count < config.min_train_examples:
        problems.append(
            f"{train_file}: {train_count} conversations, at least {config.min_train_examples} needed "
            "(export a wider window with --days)"
        )
    general_prompts = _general_prompts(settings, config, problems)
    _check_retired_folders(settings, config, problems)
    adapters_dir, runs_dir = settings.adapters_dir, settings.runs_dir
    free_gb = _free_disk_gb(adapters_dir)
    if free_gb < config.min_free_disk_gb:
        problems.append(
            f"{adapters_dir}: {free_gb:.1f} GB free, {config.min_free_disk_gb:g} GB required (min_free_disk_gb)"
        )
    if config.load_in_4bit and not cuda:
        problems.append("load_in_4bit: true needs a CUDA GPU (bitsandbytes); set it to false on this machine")
    precision = "bf16" if config.bf16 and cuda_bf16 else "fp32"
    if config.bf16 and not cuda_bf16:
        warnings.append("bf16 requested but this machine has no fast bf16; training in fp32")
    commit, dirty = _git_state(settings.home)
    if dirty:
        warnings.append("git working tree has uncommitted changes; the recorded commit will not reproduce them")
    if problems:
        raise MiltonError(f"{config_path}: cannot train: " + "; ".join(problems))
    free = free_memory if free_memory is not None else free_memory_bytes(cuda, processes)
    return TrainPlan(
        config=config, config_path=config_path, run_id=run_id, base_model=base, train_file=train_file,
        test_file=test_file, adapter_dir=adapters_dir / run_id, run_dir=runs_dir / run_id, precision=precision,
        cuda=cuda, train_conversations=train_count, test_conversations=test_count, free_disk_gb=free_gb,
        git_commit=commit, checkpointing=choose_checkpointing(config, model_config, precision, free),
        attention=attention_implementation(cuda, precision, flash_attn_installed()),
        loss=training_loss(config, cuda),
        lora=lora_kernel(precision, config.load_in_4bit) if config.method == SFT else PEFT,
        threads=cpu_threads(processes), warnings=warnings, preferences=preferences, general_prompts=general_prompts,
        planned_general_replay=settings.planned_general_replay,
    )  # fmt: skip


def training_loss(config: TrainConfig, cuda: bool) -> str:
    """The loss kernel an SFT run trains with (`milton_lora.train.loss`); preference runs keep TRL's."""
    if config.method != SFT:
        return TRL_HEAD
    return loss_kernel("cuda" if cuda else "cpu", triton_installed(), config.distils_general_replay)


def _check_base_model(base: Path, problems: list[str], warnings: list[str]) -> Any:
    """The base model's config (None when it does not load; the problem is recorded)."""
    if not (base / "config.json").exists():
        problems.append(f"base_model_path {base}: no config.json there; point it at a local model folder")
        return None
    from transformers import AutoConfig, AutoTokenizer

    try:
        model_config = AutoConfig.from_pretrained(base)
        tokenizer = AutoTokenizer.from_pretrained(base)
    except (OSError, ValueError) as exc:
        problems.append(f"base_model_path {base}: does not load ({str(exc).splitlines()[0]})")
        return None
    if not tokenizer.chat_template:
        problems.append(f"base_model_path {base}: the tokenizer has no chat template; use an instruct model")
        return model_config
    try:
        warnings.extend(ChatFormat.of(tokenizer).notes)
    except MiltonError as exc:
        problems.append(str(exc))
    return model_config


def train_and_test_files(settings: Settings, config: TrainConfig) -> tuple[Path, Path]:
    """The config's splits, else the export's."""
    train = settings.resolve(config.train_file) if config.train_file else settings.export_train_path
    test = settings.resolve(config.test_file) if config.test_file else settings.export_test_path
    return train, test


def _check_retired_folders(settings: Settings, config: TrainConfig, problems: list[str]) -> None:
    """`adapters_dir`/`runs_dir` may only name the home's own folders: eval, promote and serve look there."""
    for key, value, home_folder in (
        ("adapters_dir", config.adapters_dir, settings.adapters_dir),
        ("runs_dir", config.runs_dir, settings.runs_dir),
    ):
        if value is not None and settings.resolve(value) != home_folder:
            problems.append(
                f"{key}: {value} is retired; runs always write to {home_folder}, where eval, promote and serve "
                f"look: remove the key (for another place, choose another MILTON_HOME)"
            )


def _check_target_modules(model_config: Any, targets: list[str], problems: list[str], warnings: list[str]) -> None:
    """`target_modules` against the base's linear layers, as peft matches them (the last part of a module's
    name), with the model built on the meta device (no weights, no memory): none found is a problem (peft
    would stop the run after loading the model), some not found a warning (peft skips them silently)."""
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(model_config)
    linear = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    missing = [target for target in targets if target not in linear]
    if len(missing) == len(targets):
        problems.append(f"target_modules {targets} match no linear layer of the base model; it has "
                        f"{sorted(linear)}")  # fmt: skip
    elif missing:
        warnings.append(f"target_modules {missing} match no linear layer of the base model (skipped)")


def _general_prompts(settings: Settings, config: TrainConfig, problems: list[str]) -> Path | None:
    """The general replay's pool (`train/general_replay.py`): None when the run mixes none in."""
    if config.method != SFT or config.general_replay <= 0:
        return None
    path = settings.resolve(config.general_replay_prompts) if config.general_replay_prompts else None
    if path is not None and not path.is_file():
        problems.append(f"general_replay_prompts {path}: not found; name a file of prompts, one per line")
    return path or shipped(GENERAL_PROMPTS)


def _count_lines(path: Path, problems: list[str]) -> int:
    if not path.exists():
        problems.append(f"{path}: not found; run `milton-lora export --days 30` first")
        return 0
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _free_disk_gb(directory: Path) -> float:
    existing = directory
    while not existing.exists():
        existing = existing.parent
    return shutil.disk_usage(existing).free / 1e9


def _git_state(directory: Path) -> tuple[str | None, bool]:
    """(HEAD commit, has uncommitted changes) of the repository holding `directory`, if any."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None, False
        status = subprocess.run(
            ["git", "-C", str(directory), "status", "--porcelain"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None, False
    return commit.stdout.strip(), bool(status.stdout.strip())
