"""Settings chosen for the machine at hand: gradient checkpointing only where memory needs it, CPU threads.

Gradient checkpointing recomputes each decoder layer's forward pass during the backward pass: about a
third more compute, in exchange for keeping one layer's activations instead of all of them. With
`use_gradient_checkpointing: auto` it is switched on only when the estimated peak (weights plus the
activations of one micro-batch) would not fit in MEMORY_SHARE of the free memory (the GPU's with CUDA,
the machine's available RAM, split among local processes, on a CPU). The estimate counts what
autograd keeps per token and layer for LoRA training with per-conversation SDPA: ACTIVATION_COEFFICIENTS,
checked against peak RSS measured on the SmolLM2-135M shape (README "Training").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from milton_lora.config import TrainConfig

MEMORY_SHARE = 0.8
# Values kept for the backward pass per token and decoder layer, as multiples of (hidden, key/value
# width, intermediate): norms, projection inputs shared by the LoRA A matrices, q/k/v after RoPE and
# the attention output (SDPA keeps no score matrix), and gate, up, their product and SiLU for the MLP.
ACTIVATION_COEFFICIENTS = (10, 2, 4)
# Each LoRA dropout keeps its own masked copy of the layer input (q, k, v, o, gate, up: hidden; down: intermediate).
DROPOUT_COEFFICIENTS = (6, 0, 1)
BYTES = {"bf16": 2, "fp32": 4}


@dataclass(frozen=True)
class CheckpointingChoice:
    enabled: bool
    reason: str


def activation_bytes(model_config: Any, tokens: int, precision: str, lora_dropout: float) -> int:
    """Estimated activation memory of one forward pass over `tokens` tokens kept for the backward pass."""
    hidden = model_config.hidden_size
    head_dim = getattr(model_config, "head_dim", None) or hidden // model_config.num_attention_heads
    widths = (hidden, model_config.num_key_value_heads * head_dim, model_config.intermediate_size)
    coefficients = ACTIVATION_COEFFICIENTS
    if lora_dropout > 0:
        coefficients = tuple(a + b for a, b in zip(coefficients, DROPOUT_COEFFICIENTS, strict=True))
    per_token_layer = sum(c * w for c, w in zip(coefficients, widths, strict=True))
    return tokens * model_config.num_hidden_layers * per_token_layer * BYTES[precision]


def weight_bytes(model_config: Any, precision: str, four_bit: bool) -> int:
    """Base weights in memory: every matmul parameter plus the embedding table (4-bit: half a byte each)."""
    hidden, layers, vocab = model_config.hidden_size, model_config.num_hidden_layers, model_config.vocab_size
    head_dim = getattr(model_config, "head_dim", None) or hidden // model_config.num_attention_heads
    attention = hidden * head_dim * (2 * model_config.num_attention_heads + 2 * model_config.num_key_value_heads)
    mlp = 3 * hidden * model_config.intermediate_size
    embeddings = vocab * hidden * (1 if getattr(model_config, "tie_word_embeddings", False) else 2)
    per_parameter = 0.5 if four_bit else BYTES[precision]
    return int((layers * (attention + mlp) + embeddings) * per_parameter)


def tokens_per_forward(config: TrainConfig) -> int:
    """Tokens in one forward pass: one packed row, or a padded batch of full-length conversations."""
    return config.max_seq_length * (1 if config.packing else config.per_device_train_batch_size)


def choose_checkpointing(config: TrainConfig, model_config: Any, precision: str,
                         free_bytes: int | None) -> CheckpointingChoice:  # fmt: skip
    """The `use_gradient_checkpointing` setting resolved: an explicit true/false, or the memory rule for auto."""
    if config.use_gradient_checkpointing != "auto":
        enabled = bool(config.use_gradient_checkpointing)
        return CheckpointingChoice(enabled, f"{'on' if enabled else 'off'} (set in the config)")
    shape = decoder_shape(model_config)
    if shape is None or free_bytes is None:
        return CheckpointingChoice(True, "on (auto: model shape or free memory unknown)")
    tokens = tokens_per_forward(config)
    activations = activation_bytes(shape, tokens, precision, config.lora_dropout)
    weights = weight_bytes(shape, precision, config.load_in_4bit)
    budget = MEMORY_SHARE * free_bytes
    enabled = weights + activations > budget
    verdict = "more than" if enabled else "within"
    return CheckpointingChoice(
        enabled,
        f"{'on' if enabled else 'off'} (auto: {gb(weights)} weights + {gb(activations)} activations for "
        f"{tokens} tokens, {verdict} {MEMORY_SHARE:.0%} of {gb(free_bytes)} free)",
    )


def decoder_shape(model_config: Any) -> Any:
    """The (text) config with the decoder sizes the estimates read, or None for an architecture without them."""
    if model_config is None:
        return None
    text = model_config.get_text_config()
    needed = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size",
              "vocab_size")  # fmt: skip
    return text if all(isinstance(getattr(text, name, None), int) for name in needed) else None


def gb(value: float) -> str:
    return f"{value / 1e9:.1f} GB"


def free_memory_bytes(cuda: bool, processes: int) -> int:
    """Free memory for one training process: the current GPU's, or available RAM shared by local processes."""
    if cuda:
        import torch

        return int(torch.cuda.mem_get_info()[0])
    import psutil

    return int(psutil.virtual_memory().available // max(1, processes))


def cpu_threads(processes: int) -> int:
    """Compute threads per process: the cores this process may run on, shared among the processes."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, processes))
