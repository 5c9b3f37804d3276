"""A fused forward and backward for peft's LoRA linear layers while training.

peft computes a LoRA layer as `base(x) + lora_B(lora_A(dropout(x))) * scaling`: besides the two small
matmuls, a `[tokens x out]` LoRA output, its scaled copy and the sum are written and read again in
the forward pass, and the backward pass scales the gradient in another full-size pass. `FusedLoraLinear`
accumulates the LoRA product into the base output inside the matmul (`addmm` with `alpha=scaling`) and
writes the backward pass out: dX = dY W + s (dY B) A as one matmul plus one accumulating matmul,
dA = s (dY B)^T X', dB = s dY^T (X' A^T), where X' is the dropped-out input. On 2 CPU cores this made
a training step of the bench's 3.1M-parameter model 7-8% faster (README "Training").

Only the plain case is fused; everything else goes to peft's own forward unchanged: a frozen
`torch.nn.Linear` base layer, one active adapter without a variant (no DoRA), not merged, no mixed-adapter batch,
gradients enabled, no autocast, and base, LoRA and input all in one dtype (so a bf16 base with peft's
fp32 adapter weights, and 4-bit layers, keep peft's path). The parameters stay peft's own, so the saved
adapter is the same. Tests compare the loss and every gradient with peft's forward, with and without
dropout (tests/test_train_kernels.py).
"""

from __future__ import annotations

import types
from typing import Any

import torch

FUSED = "fused"
PEFT = "peft"


def lora_kernel(precision: str, four_bit: bool) -> str:
    """FUSED where the layers are plain and all of one dtype: fp32 training. A bf16 base keeps peft's fp32
    adapter weights (a dtype the fused matmuls do not mix) and a 4-bit base has its own layers: PEFT."""
    return FUSED if precision == "fp32" and not four_bit else PEFT


class FusedLoraLinear(torch.autograd.Function):
    """y = x W^T + b + s (x' A^T) B^T, with x' = dropout(x) (x' is x itself without dropout)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, dropped: torch.Tensor | None, weight: torch.Tensor,
                bias: torch.Tensor | None, lora_a: torch.Tensor, lora_b: torch.Tensor,
                scaling: float) -> torch.Tensor:  # fmt: skip
        shape = x.shape
        rows = x.reshape(-1, shape[-1])
        lora_rows = rows if dropped is None else dropped.reshape(-1, shape[-1])
        projected = torch.mm(lora_rows, lora_a.t())  # [tokens x r]
        out = torch.mm(rows, weight.t()) if bias is None else torch.addmm(bias, rows, weight.t())
        out.addmm_(projected, lora_b.t(), alpha=scaling)
        ctx.save_for_backward(lora_rows, projected, weight, lora_a, lora_b)
        ctx.scaling, ctx.shape, ctx.separate_dropout = scaling, shape, dropped is not None
        return out.view(*shape[:-1], out.shape[-1])

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        lora_rows, projected, weight, lora_a, lora_b = ctx.saved_tensors
        scaling, shape = ctx.scaling, ctx.shape
        grad_rows = grad_out.reshape(-1, grad_out.shape[-1])
        grad_projected = torch.mm(grad_rows, lora_b)  # [tokens x r]
        needs_x, needs_dropped = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_x = grad_dropped = None
        if needs_x:
            grad_x = torch.mm(grad_rows, weight)
            if not ctx.separate_dropout:
                grad_x.addmm_(grad_projected, lora_a, alpha=scaling)
            grad_x = grad_x.view(shape)
        if needs_dropped:
            grad_dropped = torch.mm(grad_projected, lora_a).mul_(scaling).view(shape)
        grad_a = torch.mm(grad_projected.t(), lora_rows).mul_(scaling) if ctx.needs_input_grad[4] else None
        grad_b = torch.mm(grad_rows.t(), projected).mul_(scaling) if ctx.needs_input_grad[5] else None
        return grad_x, grad_dropped, None, None, grad_a, grad_b, None


def fused_adapter(layer: Any, x: torch.Tensor, args: tuple, kwargs: dict) -> str | None:
    """The active adapter of `layer` when this call can be fused, else None (peft's forward runs)."""
    if args or kwargs or layer.disable_adapters or layer.merged or len(layer.active_adapters) != 1:
        return None
    if not torch.is_grad_enabled() or torch.is_autocast_enabled(x.device.type):
        return None
    name = layer.active_adapters[0]
    base = layer.base_layer
    if name not in layer.lora_A or name in layer.lora_variant or type(base) is not torch.nn.Linear:
        return None
    if base.weight.requires_grad or (base.bias is not None and base.bias.requires_grad):
        return None  # the fused backward gives the frozen base layer no gradient
    dtype = base.weight.dtype
    if not (x.dtype == dtype == layer.lora_A[name].weight.dtype == layer.lora_B[name].weight.dtype):
        return None
    return name


def install_fused_lora(model: torch.nn.Module) -> int:
    """Route the training forward of every peft LoRA `Linear` in `model` through `FusedLoraLinear`; the number
    of layers patched. Calls that cannot be fused (see the module docstring) go to peft's forward."""
    from peft.tuners.lora.layer import Linear

    patched = 0
    for layer in model.modules():
        if type(layer) is not Linear:
            continue
        peft_forward = layer.forward

        def forward(self: Any, x: torch.Tensor, *args: Any, _peft_forward: Any = peft_forward,
                    **kwargs: Any) -> torch.Tensor:  # fmt: skip
            name = fused_adapter(self, x, args, kwargs)
            if name is None:
                return _peft_forward(x, *args, **kwargs)
            dropout = self.lora_dropout[name]
            dropped = None if isinstance(dropout, torch.nn.Identity) else dropout(x)
            base = self.base_layer
            return FusedLoraLinear.apply(x, dropped, base.weight, base.bias, self.lora_A[name].weight,
                                         self.lora_B[name].weight, self.scaling[name])  # fmt: skip

        layer.forward = types.MethodType(forward, layer)
        patched += 1
    return patched
