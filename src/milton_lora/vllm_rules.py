"""What vLLM accepts of a LoRA adapter: its allowed LoRA ranks and the checks its LoRA loader makes.

A ground-floor module: the config validator (ranks), the registry (promotion checks) and `serve/vllm`
(the command line) all read it. Kept light at import time: safetensors is imported where it is used.
"""

import json
from pathlib import Path

from milton_lora.errors import MiltonError
from milton_lora.settings import ADAPTER_CONFIG, ADAPTER_WEIGHTS

# The values vLLM accepts for --max-lora-rank.
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def vllm_rank(adapter_rank: int) -> int:
    """The smallest rank vLLM accepts for --max-lora-rank that fits the adapter."""
    for allowed in VLLM_LORA_RANKS:
        if allowed >= adapter_rank:
            return allowed
    raise MiltonError(f"LoRA rank {adapter_rank} is above vLLM's largest ({VLLM_LORA_RANKS[-1]})")


def check_vllm_compatible(adapter_dir: Path, max_lora_rank: int) -> None:
    """Raise unless vLLM would load this adapter: the same checks its LoRA loader makes.

    The tensor names are read through safetensors' numpy view, which reads the header without importing
    torch: promotion runs this, and `promote` stays a sub-second command.
    """
    from safetensors import safe_open

    config_path = adapter_dir / ADAPTER_CONFIG
    try:
        config = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MiltonError(f"{config_path}: unreadable adapter config ({exc})") from None
    problems = []
    rank = config.get("r")
    if not isinstance(rank, int) or rank > max_lora_rank:
        problems.append(f"rank {rank} is above the server's max LoRA rank {max_lora_rank} (serve.yaml max_lora_rank)")
    if config.get("bias", "none") != "none":
        problems.append(f"bias is '{config.get('bias')}', vLLM needs 'none'")
    if config.get("use_dora"):
        problems.append("DoRA adapters are not supported by vLLM")
    if config.get("modules_to_save"):
        problems.append(f"modules_to_save {config['modules_to_save']} is not supported by vLLM")
    with safe_open(str(adapter_dir / ADAPTER_WEIGHTS), framework="numpy") as weights:
        odd = [k for k in weights.keys() if not k.endswith((".lora_A.weight", ".lora_B.weight"))]  # noqa: SIM118
    if odd:
        problems.append(f"tensors other than lora_A/lora_B weights: {', '.join(sorted(odd)[:3])}")
    if problems:
        raise MiltonError(f"{adapter_dir.name} cannot be served by vLLM: " + "; ".join(problems))
