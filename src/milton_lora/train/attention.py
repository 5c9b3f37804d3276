"""Exact per-conversation attention for packed rows, plugged into transformers' attention interface.

A packed row holds several conversations one after another, with position ids restarting at 0 for
each and no attention mask. Stock SDPA needs a dense `[row x row]` block-diagonal mask for that,
which costs memory and compute quadratic in the whole row. `packed_sdpa_attention` instead calls
SDPA with `is_causal=True` once per conversation span, so each conversation attends only to itself
and the work is quadratic in each conversation's own length. The spans come from the collator's
`cu_seq_lens_q` (TRL's padding-free collator computes them on the CPU) or from the position ids.
Anything that is not a packed training row (a padding mask, a KV cache, one row per document) goes
to transformers' own SDPA unchanged.

On CUDA with `flash_attn` installed and bf16, transformers' `flash_attention_2` runs the varlen
kernel on the same packed position ids; `attention_implementation` chooses between the two.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

PACKED_SDPA = "milton_packed_sdpa"
FLASH_ATTENTION = "flash_attention_2"


def attention_implementation(cuda: bool, precision: str, flash_attn_installed: bool) -> str:
    """flash_attention_2 where its varlen kernel runs (CUDA, bf16, flash_attn installed), else per-span SDPA."""
    if cuda and precision == "bf16" and flash_attn_installed:
        return FLASH_ATTENTION
    return PACKED_SDPA


def flash_attn_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("flash_attn") is not None


def register_packed_attention() -> None:
    """Make `attn_implementation="milton_packed_sdpa"` available to every transformers model (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(PACKED_SDPA, packed_sdpa_attention)
    AttentionMaskInterface.register(PACKED_SDPA, padding_mask_only)


def padding_mask_only(*args: Any, attention_mask: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor | None:
    """The mask builder for PACKED_SDPA: a padded batch gets SDPA's usual mask; a packed row gets none,
    since the attention finds the conversations itself (this is what avoids the dense block-diagonal mask)."""
    from transformers.masking_utils import sdpa_mask

    if attention_mask is None:
        return None
    return sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


def packed_sdpa_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Causal SDPA over each conversation of a packed row; (output [batch, tokens, heads, head_dim], None)."""
    spans = None
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    if attention_mask is None and causal and query.shape[0] == 1 and query.shape[2] == key.shape[2]:
        spans = document_spans(query.shape[2], kwargs.get("cu_seq_lens_q"), kwargs.get("position_ids"))
    if spans is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )
    groups = getattr(module, "num_key_value_groups", 1)
    outputs = [
        torch.nn.functional.scaled_dot_product_attention(
            query[:, :, start:end],
            key[:, :, start:end],
            value[:, :, start:end],
            dropout_p=dropout,
            scale=scaling,
            is_causal=True,
            enable_gqa=groups > 1,
        )
        for start, end in spans
    ]
    output = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
    return output.transpose(1, 2).contiguous(), None


def document_spans(
    length: int, cu_seq_lens: torch.Tensor | None, position_ids: torch.Tensor | None
) -> list[tuple[int, int]] | None:
    """[start, end) of each conversation in a packed row of `length` tokens, or None when the row is not packed
    (no position ids, or positions that run 0..length-1 without restarting: one conversation, plain causal)."""
    if cu_seq_lens is not None and cu_seq_lens.numel() >= 2 and int(cu_seq_lens[-1]) == length:
        bounds = cu_seq_lens.tolist()
    elif position_ids is not None and position_ids.shape[-1] == length:
        positions = position_ids.reshape(-1, length)[0]
        restarts = (positions[1:] != positions[:-1] + 1).nonzero().flatten() + 1
        bounds = [0, *restarts.tolist(), length]
    else:
        return None
    spans = [(start, end) for start, end in itertools.pairwise(bounds) if end > start]
    return spans if len(spans) > 1 else None
