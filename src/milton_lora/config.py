"""YAML configs → one validated pydantic model each (training, serving; `redact.yaml` is `redact.config`'s),
with errors users can act on.

Every problem in a file is reported at once, one per line, naming the key; an unknown key names the
nearest valid one. Relative paths inside a config are resolved by the caller against `MILTON_HOME`.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from milton_lora.errors import MiltonError
from milton_lora.vllm_rules import VLLM_LORA_RANKS

Model = TypeVar("Model", bound=BaseModel)
# A config holds dozens of values; a document that expands beyond this is refused, not built.
MAX_YAML_VALUES = 100_000


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TrainConfig(StrictModel):
    """A training run (`training/configs/*.yaml`): the documented keys first, then finer controls."""

    base_model_path: str = Field(description="Folder of the base model (config.json, tokenizer, weights).")
    run_name_prefix: str = Field("lora", description="Run ids are <prefix>_YYYYMMDD_HHMMSS.")
    lora_r: int = Field(16, ge=1, le=512, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA alpha (an integer, as vLLM requires).")
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        min_length=1,
        description="Linear layers that get LoRA weights.",
    )
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate.")
    num_epochs: float = Field(
        3, gt=0, description="Epochs over train_file (ignored when max_steps > 0; raised to reach min_steps)."
    )
    min_steps: int = Field(
        40,
        ge=0,
        description="At least this many optimizer steps: a small export gets a smaller effective batch, then more "
        "epochs (0: off; an explicit max_steps wins).",
    )
    per_device_train_batch_size: int = Field(
        4,
        ge=1,
        description="Sequences per micro-batch; with packing, packed rows of max_seq_length tokens (at most: "
        "see min_steps).",
    )
    gradient_accumulation_steps: int = Field(
        4, ge=1, description="Micro-batches per optimizer step (at most: see min_steps)."
    )
    bf16: bool = Field(True, description="bf16 mixed precision; falls back to fp32 with a warning without support.")
    lr_scheduler_type: Literal[
        "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup"
    ] = Field("cosine", description="transformers scheduler name.")
    warmup_ratio: float = Field(0.05, ge=0.0, lt=1.0, description="Linear warmup, as a share of the optimizer steps.")
    warmup_steps: int | None = Field(None, ge=0, description="Linear warmup steps (set: wins over warmup_ratio).")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    train_file: str | None = Field(None, description="Training split (default: the export's train.jsonl).")
    test_file: str | None = Field(None, description="Held-out split (default: the export's test.jsonl).")
    adapters_dir: str | None = Field(
        None, description="Retired: adapters are written to MILTON_HOME/adapters; accepted only naming that folder."
    )
    runs_dir: str | None = Field(
        None, description="Retired: runs are written to MILTON_HOME/runs; accepted only naming that folder."
    )
    max_seq_length: int = Field(2048, ge=16, description="Tokens per conversation; longer ones keep their start.")
    use_gradient_checkpointing: bool | Literal["auto"] = Field(
        "auto", description="Recompute activations in the backward pass: true, false, or auto (when memory needs it)."
    )

    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: use num_epochs).")
    seed: int = Field(42, description="Seed for data order and LoRA init.")
    evals_per_run: int = Field(
        8, ge=1, description="Held-out loss evaluations spread over the run (when eval_steps is 0)."
    )
    eval_steps: int = Field(0, ge=0, description="Evaluate every N steps (0: evals_per_run times per run).")
    early_stopping_patience: int = Field(
        3, ge=0, description="Stop after this many evaluations without a better held-out loss (0: never)."
    )
    save_steps: int = Field(
        0, ge=0, description="Checkpoint every N steps (0: at each evaluation, else once per epoch)."
    )
    save_total_limit: int = Field(3, ge=1, description="Checkpoints kept.")
    logging_steps: int = Field(1, ge=1, description="Log train/loss every N steps.")
    packing: bool = Field(True, description="Padding-free packing (per-conversation attention, exact loss).")
    load_in_4bit: bool = Field(False, description="QLoRA: 4-bit base weights with bitsandbytes (CUDA only).")
    min_free_disk_gb: float = Field(10.0, ge=0, description="Safety check: free space required where adapters go.")
    min_train_examples: int = Field(10, ge=1, description="Safety check: conversations required in train_file.")
    replay_fraction: float = Field(
        0.2,
        ge=0.0,
        le=1.0,
        description="With --from-production: older conversations replayed, as a fraction of the new train ones.",
    )
    general_replay: float = Field(
        0.0,
        ge=0.0,
        le=2.0,
        description="SFT: general questions answered by the base model itself, mixed in as a fraction of the train "
        'conversations, so the adapter keeps the base\'s general answers (README "Training"); 0: none.',
    )
    general_replay_prompts: str | None = Field(
        None, description="The general replay's prompts, one per line; null: the shipped general_prompts.txt."
    )
    general_replay_target: Literal["distribution", "answer"] = Field(
        "distribution",
        description="What the general replay trains towards: the base model's whole next-token distribution at each "
        'token of its answers (a KL term), or only the tokens it chose (README "Training").',
    )

    method: Literal["sft", "dpo", "kto"] = Field(
        "sft",
        description="sft: imitate the kept conversations; dpo: learn from preferences.jsonl's pairs (chosen over "
        'rejected); kto: from its thumbs labels and its pairs taken apart (README "Preference training").',
    )
    init_from: Literal["base", "production"] = Field(
        "base",
        description="Start from new LoRA weights on the base, or from the production adapter's (as --from-production; "
        "a dpo/kto run then takes its base model and LoRA shape from that adapter).",
    )
    beta: float = Field(
        0.1, gt=0, description="dpo/kto: how far the adapter may move from its reference (higher: less far)."
    )
    min_train_preferences: int = Field(
        20,
        ge=1,
        description="Safety check (dpo/kto): train-split pairs (dpo) or labels and pairs (kto) required; `cycle` "
        "runs its preference stage only from this many.",
    )

    @field_validator("use_gradient_checkpointing", mode="before")
    @classmethod
    def _true_false_or_auto(cls, value: Any) -> Any:
        if value is True or value is False or value == "auto":
            return value
        raise ValueError("must be true, false or auto")

    @field_validator("lora_alpha", mode="before")
    @classmethod
    def _alpha_is_integer(cls, value: Any) -> Any:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError("must be an integer (vLLM refuses fractional lora_alpha)")
        return value

    @property
    def distils_general_replay(self) -> bool:
        """Whether the run mixes in general replay trained towards the base model's distributions."""
        return self.method == "sft" and self.general_replay > 0 and self.general_replay_target == "distribution"


class ServeConfig(StrictModel):
    """`training/configs/serve.yaml`: how `milton-lora serve` and `scripts/start_all.sh` serve adapters."""

    backend: Literal["embedded", "vllm"] = Field("embedded", description="embedded (any machine) or vllm (GPU).")
    host: str = Field(
        "127.0.0.1",
        description="Bind address; anything but loopback (0.0.0.0: your network) needs MILTON_SERVE_API_KEY.",
    )
    port: int = Field(8000, ge=1, le=65535, description="Port.")
    base_model_path: str | None = Field(None, description="Base model folder (default: the production adapter's).")
    base_model_name: str | None = Field(None, description="Name the base model answers to (default: folder name).")
    max_lora_rank: int = Field(64, description="Largest LoRA rank the server accepts (vLLM's --max-lora-rank).")
    capture: bool = Field(False, description="Append every served conversation to the memory store.")
    ui: bool = Field(False, description="Also serve the dashboard (`milton-lora ui`) under /ui, behind the same key.")
    vllm_extra_args: list[str] = Field(default_factory=list, description="Extra arguments for `vllm serve`.")
    max_request_bytes: int = Field(1_048_576, ge=1024, description="Larger request bodies are refused (413).")
    request_timeout_s: float = Field(
        120.0, gt=0, description="Per request: waiting for the model and generating; a reply cut here ends 'length'."
    )
    max_queued_requests: int = Field(
        8, ge=1, description="Requests waiting or generating at once; more are answered 429 with Retry-After."
    )
    admin_endpoints: bool = Field(
        False,
        description="Let clients with the API key use /v1/load_lora_adapter and /v1/unload_lora_adapter "
        "(adapters folder only); promotion's hot swap works either way.",
    )

    @field_validator("max_lora_rank")
    @classmethod
    def _allowed_rank(cls, value: int) -> int:
        if value not in VLLM_LORA_RANKS:
            raise ValueError(f"must be one of vLLM's allowed ranks {list(VLLM_LORA_RANKS)}")
        return value


class ExportConfig(StrictModel):
    """`MILTON_HOME/export.yaml` (optional): what of each stored conversation `milton-lora export` writes."""

    include_attachments: bool = Field(
        True, description="Put the text of files attached to a turn (claude.ai) into that user turn, marked."
    )
    keep_reasoning: bool = Field(
        False, description="Keep <think>…</think> reasoning in answers (for base models whose template models it)."
    )
    restate_facts: bool = Field(
        False,
        description="Add the facts you state about yourself, restated by the base model in the assistant's voice, "
        "to the train split (as `export --restate-facts`).",
    )
    restate_max_facts: int = Field(
        64, ge=1, description="At most this many stated facts are restated per export (the first found)."
    )


def load_model(path: Path, model: type[Model], defaults_if_missing: bool = False) -> Model:
    """Read `path` as YAML and validate it into `model`, or raise one MiltonError listing every problem."""
    if not path.exists():
        if defaults_if_missing:
            return model()
        raise MiltonError(f"{path}: config file not found")
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise MiltonError(f"{path}: expected a mapping of keys to values at the top level")
    return validate(data, model, str(path))


def read_yaml(path: Path) -> Any:
    """A YAML file's data, refusing documents whose aliases expand beyond MAX_YAML_VALUES values (a
    "billion laughs" file would fill memory and every error message) or that nest too deeply."""
    loader = yaml.SafeLoader(path.read_text(encoding="utf-8", errors="replace"))
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_size(node, {}) > MAX_YAML_VALUES:
            raise MiltonError(f"{path}: more than {MAX_YAML_VALUES:,} values once its aliases (*name) are expanded; "
                              "a config needs a few dozen: write them out plainly")  # fmt: skip
        return None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise MiltonError(f"{where}: not valid YAML ({_bounded(getattr(exc, 'problem', None) or exc)})") from None
    except RecursionError:
        raise MiltonError(f"{path}: nested too deeply to be a config") from None
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Values in `node` once every alias is written out; shared nodes are counted once per use, computed once."""
    if id(node) not in sizes:
        sizes[id(node)] = 0  # a node that contains itself (a recursive alias) counts as itself
        children: list[Any] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        sizes[id(node)] = min(1 + sum(_expanded_size(child, sizes) for child in children), MAX_YAML_VALUES + 1)
    return sizes[id(node)]


def _bounded(value: Any, limit: int = 200) -> str:
    """`value` for an error message, never longer than `limit` characters: errors never echo a file at length."""
    text = str(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text):,} characters)"


def validate(data: dict[str, Any], model: type[Model], source: str) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(error, model) for error in exc.errors()]
        raise MiltonError(f"{source}: " + "; ".join(problems)) from None


def _describe(error: Any, model: type[BaseModel]) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        fields = list(_model_at(model, error["loc"][:-1]).model_fields)
        guess = difflib.get_close_matches(str(error["loc"][-1]), fields, n=1, cutoff=0.5)
        hint = f" (did you mean '{guess[0]}'?)" if guess else ""
        return f"unknown key '{key}'{hint}"
    if error["type"] == "missing":
        return f"missing required key '{key}'"
    message = error["msg"].removeprefix("Value error, ")
    return f"'{key}': {_bounded(message)} (got {_bounded(repr(error.get('input')))})"


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel]:
    """The model a nested key belongs to (`always.0.lable` belongs to `RedactTerm`), following list items."""
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            continue
        inner = field.annotation
        for argument in getattr(inner, "__args__", ()):
            if isinstance(argument, type) and issubclass(argument, BaseModel):
                inner = argument
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            model = inner
    return model


def config_reference(model: type[BaseModel]) -> str:
    """A Markdown table of every key, its default and meaning, generated from the model (for the README)."""
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    for name, info in model.model_fields.items():
        if info.is_required():
            default = "(required)"
        elif info.default_factory is not None:
            default = repr(info.default_factory())  # type: ignore[call-arg]
        else:
            default = repr(info.default)
        rows.append(f"| `{name}` | `{default}` | {info.description or ''} |")
    return "\n".join(rows)


def full_reference() -> str:
    """The README's configuration reference, generated (a test keeps the README in sync)."""
    return (
        "### Training (`training/configs/*.yaml`)\n\n" + config_reference(TrainConfig) + "\n\n"
        "### Serving (`training/configs/serve.yaml`)\n\n" + config_reference(ServeConfig) + "\n\n"
        "### Export (`MILTON_HOME/export.yaml`, optional)\n\n" + config_reference(ExportConfig) + "\n"
    )
