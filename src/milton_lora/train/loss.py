"""The training loss without a `[tokens x vocabulary]` logits tensor: output head and cross-entropy fused,
over the labelled positions only, in chunks whose size is set by a memory budget.

TRL's SFTTrainer computes its loss from `model(..., fused_lm_head=True)`, which returns per-token
log-probabilities (plus entropy and top-1 hits for its metrics) and never the logits; TRL divides
their sum by `num_items_in_batch`, which keeps gradient accumulation exact. On CUDA its Triton kernel
already scores only the labelled positions. On other devices its fallback scores every position, in
tiles of up to 4096 tokens x 32768 vocabulary entries, and recomputes each tile in the backward pass.
`install_labelled_head` replaces that forward (where `loss_kernel` picks "chunked") with one that
scores only positions whose label is not -100, in chunks of at most CHUNK_BYTES of logits, and
computes the gradient with respect to the hidden states in the same pass (one vocabulary-sized
matmul forward, one backward, nothing recomputed). The returned fields are the ones TRL reads, so
TRL's loss scaling, metrics and logging stay as they are.

A run that distils its general replay (`general_replay_target: distribution`) marks those tokens DISTILLED;
the head then trains them towards the base model's distribution q (the same forward with the adapter switched
off, without gradients) instead of the one-hot target: each such position's value is sum q log p, whose gradient
is that of KL(q || p), so its logged loss is the cross-entropy with q (the KL plus q's own entropy).
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch

from milton_lora.chat.masks import DISTILLED, IGNORE

CHUNK_BYTES = 64 * 1024 * 1024  # logits and probabilities of one chunk: 170 tokens of a 49k vocabulary in fp32
TRITON = "trl-triton"
CHUNKED = "chunked"
# Config attributes that change the logits (softcapping, scaling); TRL's own head handles models that set them.
LOGIT_TRANSFORMS = (
    "final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling"
)  # fmt: skip


def loss_kernel(device_type: str, triton_available: bool, distils: bool = False) -> str:
    """TRL's Triton kernel where it runs (CUDA/XPU with Triton: it scores labelled positions only), else ours;
    ours always for a run that distils (TRL's kernel scores the target token only, not a distribution)."""
    return TRITON if device_type in ("cuda", "xpu") and triton_available and not distils else CHUNKED


def triton_installed() -> bool:
    from transformers.utils import is_triton_available

    return bool(is_triton_available())


def rows_per_chunk(vocab_size: int, budget_bytes: int = CHUNK_BYTES, soft: bool = False) -> int:
    """Labelled positions scored at once: two fp32 [rows x vocab] buffers fit in the budget (four with soft
    targets: the teacher's logits and distribution too)."""
    return max(1, budget_bytes // ((4 if soft else 2) * 4 * vocab_size))


class LabelledLogProbs(torch.autograd.Function):
    """log p(target) per labelled position of `hidden @ weight.T`, with its entropy and top-1 hit.

    The gradient of each log-probability with respect to its hidden state, (onehot - p) @ weight, is
    computed chunk by chunk in the forward pass and kept ([positions x hidden], small); the backward
    pass only scales it by the incoming per-token gradient. The weight is frozen (LoRA never trains
    the output head), so no weight gradient is needed.

    Positions marked `soft` have a whole distribution as their target, q = softmax(teacher @ weight.T) from
    the `teacher` hidden states (one row per soft position, in order): their value is sum q log p (minus the
    cross-entropy with q, whose gradient is the KL divergence's) and their gradient (q - p) @ weight.
    """

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, rows: int,
                soft: torch.Tensor | None = None, teacher: torch.Tensor | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        count, vocab = hidden.shape[0], weight.shape[0]
        log_probs = torch.empty(count, dtype=torch.float32, device=hidden.device)
        entropy = torch.empty_like(log_probs)
        is_top1 = torch.empty(count, dtype=torch.bool, device=hidden.device)
        grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        logits = hidden.new_empty((min(rows, count), vocab), dtype=torch.float32)
        probs = torch.empty_like(logits)
        first = 0  # the teacher row of the next soft position
        for start in range(0, count, rows):
            end = min(start + rows, count)
            z, p = logits[: end - start], probs[: end - start]
            project(hidden[start:end], weight, out=z)
            target = targets[start:end].unsqueeze(1)
            peak, best = z.max(dim=1)
            z.sub_(peak.unsqueeze(1))  # z - max: every exponent <= 0
            torch.exp(z, out=p)
            total = p.sum(dim=1)
            log_total = total.log()
            log_probs[start:end] = z.gather(1, target).squeeze(1) - log_total
            # entropy = log sum e^z - sum p z, with the shifted z (sum p z through a batched dot product)
            expected = torch.bmm(p.unsqueeze(1), z.unsqueeze(2)).flatten() / total
            entropy[start:end] = log_total - expected
            is_top1[start:end] = best == target.squeeze(1)
            local = soft[start:end].nonzero().flatten() if soft is not None else targets.new_empty(0)
            if local.numel():
                q = teacher_distribution(teacher[first : first + local.numel()], weight)
                first += local.numel()
                log_probs[start + local] = (q * (z[local] - log_total[local].unsqueeze(1))).sum(dim=1)
            if grad_hidden is not None:
                hit = torch.ones_like(target, dtype=p.dtype)
                hit[local] = 0.0  # a soft position's target is q, not the one-hot
                p.div_(total.unsqueeze(1)).neg_().scatter_add_(1, target, hit)
                if local.numel():
                    p[local] += q
                grad_hidden[start:end] = torch.mm(p.to(weight.dtype), weight).to(hidden.dtype)
        ctx.save_for_backward(grad_hidden)
        ctx.mark_non_differentiable(entropy, is_top1)
        return log_probs, entropy, is_top1

    @staticmethod
    def backward(ctx: Any, grad_log_probs: torch.Tensor | None, *_: Any) -> tuple[torch.Tensor | None, ...]:
        (grad_hidden,) = ctx.saved_tensors
        if grad_log_probs is None or grad_hidden is None:
            return None, None, None, None, None, None
        return grad_hidden * grad_log_probs.unsqueeze(1).to(grad_hidden.dtype), None, None, None, None, None


def teacher_distribution(teacher: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """softmax(teacher @ weight.T) in fp32: the distribution a soft position is trained towards."""
    logits = torch.empty((teacher.shape[0], weight.shape[0]), dtype=torch.float32, device=teacher.device)
    project(teacher, weight, out=logits)
    return torch.softmax(logits, dim=1)


def project(hidden: torch.Tensor, weight: torch.Tensor, out: torch.Tensor) -> None:
    """out (fp32) = hidden @ weight.T, multiplied in the head's dtype (a half-precision head is never copied)."""
    if weight.dtype == out.dtype:
        torch.mm(hidden.to(weight.dtype), weight.t(), out=out)
    else:
        out.copy_(torch.mm(hidden.to(weight.dtype), weight.t()))


def labelled_log_probs(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, rows: int | None = None,
                       soft: torch.Tensor | None = None, teacher: torch.Tensor | None = None,
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """(log-probability, entropy, top-1 hit) of each target under `hidden @ weight.T`; hidden [n, h], targets [n].
    Where `soft` [n] is set, the value is sum q log p towards the distribution of the matching `teacher` row."""
    return LabelledLogProbs.apply(
        hidden, weight, targets, rows or rows_per_chunk(weight.shape[0], soft=soft is not None), soft, teacher
    )


def transforms_logits(model_config: Any) -> bool:
    """Whether the model changes its logits after the head (softcapping, scaling): our head does not cover it."""
    text = model_config.get_text_config()
    return any(getattr(text, name, None) is not None for name in LOGIT_TRANSFORMS)


def plain_frozen_head(model: Any) -> torch.nn.Linear | None:
    """The output head when it is a frozen, bias-free nn.Linear on untransformed logits; else None."""
    head = model.get_output_embeddings()
    if type(head) is not torch.nn.Linear or head.bias is not None or head.weight.requires_grad:
        return None
    return None if transforms_logits(model.config) else head


def install_labelled_head(model: Any, adapter_off: Callable[[], AbstractContextManager] | None = None) -> None:
    """Route `model(..., fused_lm_head=True)` (TRL's loss call) through `labelled_log_probs`.

    `model` is the causal LM TRL patched with its own fused head (the PEFT model's base model); every
    other call, and heads this path does not cover (a trainable or transformed head, MoE router
    losses, pre-shifted labels), goes to the forward that was there. A batch with a `DISTILLED` mask
    (`milton_lora.chat.masks`, collated by `milton_lora.train.packing`) is run a second time, without
    gradients, inside `adapter_off` (the base model's own forward), and its marked positions are trained
    towards the base model's distributions.
    """
    from trl.trainer.utils import FusedCausalLMOutput

    previous = model.forward

    @functools.wraps(type(model).forward)
    def forward(self: Any, *args: Any, fused_lm_head: bool = False, labels: torch.Tensor | None = None,
                shift_labels: torch.Tensor | None = None, num_items_in_batch: Any = None,
                **kwargs: Any) -> Any:  # fmt: skip
        distilled = kwargs.pop(DISTILLED, None)
        head = plain_frozen_head(self) if fused_lm_head and labels is not None and shift_labels is None else None
        if head is None or kwargs.get("output_router_logits"):
            return previous(*args, fused_lm_head=fused_lm_head, labels=labels, shift_labels=shift_labels,
                            num_items_in_batch=num_items_in_batch, **kwargs)  # fmt: skip
        kwargs["use_cache"] = False
        hidden = self.base_model(*args, **kwargs).last_hidden_state[:, :-1]
        targets = labels[:, 1:].to(hidden.device)
        mask = targets != IGNORE
        soft, teacher = None, None
        if distilled is not None and adapter_off is not None:
            marked = distilled[:, 1:].to(hidden.device).bool() & mask
            if marked.any():
                with torch.no_grad(), adapter_off():
                    teacher = self.base_model(*args, **kwargs).last_hidden_state[:, :-1][marked]
                soft = marked[mask]
        selected = labelled_log_probs(hidden[mask], head.weight, targets[mask], soft=soft, teacher=teacher)
        log_probs, entropy, is_top1 = (value.new_zeros(mask.shape).masked_scatter(mask, value) for value in selected)
        denominator = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
        return FusedCausalLMOutput(loss=-log_probs.sum() / denominator, log_probs=log_probs, entropy=entropy,
                                   is_top1=is_top1, label_mask=mask)  # fmt: skip

    model.forward = types.MethodType(forward, model)
