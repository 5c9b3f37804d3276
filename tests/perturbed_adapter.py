"""An untrained LoRA adapter on any local base model, with small seeded random weights: a stand-in for a
trained adapter where training would cost minutes and only the adapter's mechanics matter (evaluating
on a real model in the tests and `bench/eval_phases.py`). Written by peft, so it loads like any adapter.
"""

from __future__ import annotations

from pathlib import Path

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def perturbed_adapter(base: Path, directory: Path, seed: int, scale: float = 0.002, rank: int = 8) -> Path:
    """Write `adapter_config.json` and `adapter_model.safetensors` into `directory`: LoRA of `rank` on the
    usual Llama projections, lora_B drawn from N(0, scale) so the adapter changes the answers a little."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from milton_lora.libraries import quiet_libraries

    quiet_libraries()
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    lora = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=TARGETS))
    with torch.no_grad():
        for name, weights in lora.named_parameters():
            if "lora_B" in name:
                weights.normal_(0.0, scale)
    lora.save_pretrained(directory)
    return directory
