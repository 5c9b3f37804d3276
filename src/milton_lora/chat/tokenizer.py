"""Loading a base model's tokenizer for chat: it must have a chat template and offsets (a fast tokenizer),
and its pad token must never be an end-of-sequence token (a pad equal to eos teaches models never to stop).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from milton_lora.errors import MiltonError

PAD_CANDIDATES = ("<|finetune_right_pad_id|>", "<|reserved_special_token_0|>")


def load_tokenizer(base: Path) -> Any:
    """The base tokenizer with a pad token that is never a real end-of-sequence token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    require_chat_template(tokenizer, str(base))
    eos_ids = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|eot_id|>")}
    if tokenizer.pad_token_id is None or tokenizer.pad_token_id in eos_ids:
        vocab = tokenizer.get_vocab()
        pad = next((token for token in PAD_CANDIDATES if token in vocab), None)
        if pad is not None:
            tokenizer.pad_token = pad
        else:  # labels are built separately, so an eos-valued pad is only ever a filler in input_ids
            tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def require_chat_template(tokenizer: PreTrainedTokenizerBase, source: str) -> None:
    if not tokenizer.chat_template:
        raise MiltonError(f"{source}: the tokenizer has no chat template; use an instruct/chat model")
    if not tokenizer.is_fast:
        raise MiltonError(f"{source}: a fast tokenizer (tokenizer.json) is needed to locate assistant tokens")
