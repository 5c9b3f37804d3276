"""Loading a base model's tokenizer for chat: it must have a chat template and offsets (a fast tokenizer),
and its pad token should not be a token that ends a turn (a pad equal to eos teaches models never to stop
wherever a collator masks pad positions; labels here are built separately, so it is a filler at worst).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from milton_lora.chat.prompts import stop_token_ids
from milton_lora.errors import MiltonError

PAD_CANDIDATES = ("<|finetune_right_pad_id|>", "<|reserved_special_token_0|>")


def load_tokenizer(base: Path) -> Any:
    """The base tokenizer, with a pad token that ends no turn wherever the vocabulary has a spare one."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    require_chat_template(tokenizer, str(base))
    stops = set(stop_token_ids(tokenizer))
    if tokenizer.pad_token_id is None or tokenizer.pad_token_id in stops:
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
