"""Build a small, deterministic Llama-architecture model folder locally (no downloads, ever).

Tests, the demo and the benchmarks train this model; real users point `base_model_path` at their own model.
The tokenizer mirrors Llama 3.1 Instruct where it matters for training correctness: byte-level BPE with
the Llama 3 pre-tokenizer regex, the Llama 3 special tokens, a post-processor that prepends
`<|begin_of_text|>` (so templating then tokenizing with special tokens gives a double BOS, as with the
real model), no pad token, and a chat template of the same structure as Llama 3.1 Instruct's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from milton_lora.errors import MiltonError

BOS = "<|begin_of_text|>"
END_OF_TEXT = "<|end_of_text|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
EOT = "<|eot_id|>"
RIGHT_PAD = "<|finetune_right_pad_id|>"
SPECIAL_TOKENS = [BOS, END_OF_TEXT, START_HEADER, END_HEADER, EOT, RIGHT_PAD]

# Same regex as the Llama 3 tokenizer's pre-tokenizer.
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Structure of Llama 3.1 Instruct's template: BOS, an always-present system block with the knowledge
# date lines, then header/content/eot per message, and the assistant header as generation prompt.
LLAMA31_STYLE_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] | trim %}"
    "{%- set messages = messages[1:] %}"
    "{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\\n' }}"
    "{{- 'Today Date: 26 Jul 2024\\n\\n' }}"
    "{{- system_message }}"
    "{{- '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim"
    " + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)


@dataclass(frozen=True)
class TinySize:
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int


SIZES: dict[str, TinySize] = {
    "tiny": TinySize(64, 176, 2, 4, 2, 1024),
    "small": TinySize(256, 688, 4, 8, 4, 2048),
    "base": TinySize(512, 1376, 8, 8, 4, 4096),
}

_CORPUS_SEED_TEXT = """\
Good morning! Here is your briefing for today. You have a meeting with the design team at 10:00,
a dentist appointment at 15:30, and a reminder to call your mother about the weekend plans.
The weather will be sunny with a high of 21 degrees. Your package from the bookstore arrives tomorrow.
Can you remind me to water the plants every Sunday evening? Sure, I will remind you every Sunday at 18:00.
What did I say about the project deadline last week? You mentioned the deadline moved to Friday the 14th.
Write a Python function that returns the factorial of a number.
def factorial(n):
    result = 1
    for i in range(2, n + 1):
        result *= i
    return result
print(factorial(5))
I cannot help with that request because it could cause harm. Is there something else I can do for you?
Summarize my notes from the meeting: the budget is approved, hiring starts in March, and the launch is in May.
Extract the fields as JSON: {"name": "Ada", "city": "London", "year": 1843}
The quick brown fox jumps over the lazy dog. Numbers like 3.11.7 and 2024-05-01 stay as they are.
Error: Traceback (most recent call last): File "app.py", line 12, in main; KeyError: 'user_id'
curl -X POST https://api.example.com/v1/items -H "Content-Type: application/json" -d '{"id": 42}'
"""


def build_tiny_model(directory: Path, size: str = "tiny", seed: int = 0) -> Path:
    """Write tokenizer, config, weights and generation config of a random Llama model to `directory`."""
    if size not in SIZES:
        raise MiltonError(f"unknown tiny model size '{size}': choose one of {', '.join(SIZES)}")
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    spec = SIZES[size]
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(spec.vocab_size)
    tokenizer.save_pretrained(directory)
    eot_id = tokenizer.convert_tokens_to_ids(EOT)
    eos_ids = [eot_id, tokenizer.convert_tokens_to_ids(END_OF_TEXT)]
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        max_position_embeddings=4096,
        rope_theta=500000.0,
        bos_token_id=tokenizer.convert_tokens_to_ids(BOS),
        eos_token_id=eos_ids,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=eos_ids, do_sample=False)
    model.save_pretrained(directory, safe_serialization=True)
    return directory


def _train_tokenizer(vocab_size: int):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_corpus_lines(), trainer=trainer)
    bos_id = backend.token_to_id(BOS)
    backend.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
            ),
        ]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOT,
        model_max_length=4096,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = LLAMA31_STYLE_TEMPLATE
    return tokenizer


def _corpus_lines() -> list[str]:
    lines = _CORPUS_SEED_TEXT.splitlines()
    # Repetition gives the BPE trainer enough pair counts to learn merges for common chat words.
    return lines * 20
