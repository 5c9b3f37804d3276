"""Training kernels: per-conversation attention, the loss over labelled positions without full logits,
and the settings chosen for the machine (attention, loss kernel, gradient checkpointing, threads)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import AutoConfig, AutoModelForCausalLM

from milton_lora.chat.masks import DISTILLED, IGNORE, joined, marked_distilled, tokenize_conversation, tokenize_split
from milton_lora.chat.tokenizer import load_tokenizer
from milton_lora.config import TrainConfig, validate
from milton_lora.errors import MiltonError
from milton_lora.train.attention import (
    FLASH_ATTENTION,
    PACKED_SDPA,
    attention_implementation,
    document_spans,
    register_packed_attention,
)
from milton_lora.train.lora_kernel import FUSED, PEFT, FusedLoraLinear, install_fused_lora, lora_kernel
from milton_lora.train.loss import (
    CHUNKED,
    TRITON,
    install_labelled_head,
    labelled_log_probs,
    loss_kernel,
    rows_per_chunk,
)
from milton_lora.train.packing import DistilledCollator, trainer_dataset
from milton_lora.train.tuning import activation_bytes, choose_checkpointing, cpu_threads

CONVERSATIONS = [
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Remind me to water the plants."},
     {"role": "assistant", "content": "Done: plants at 18:00."}, {"role": "user", "content": "And call mum?"},
     {"role": "assistant", "content": "Added: call mum at 19:00."}],
    [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "Sunny, 21 degrees."}],
    [{"role": "user", "content": "Write hello world in Python"}, {"role": "assistant", "content": "print('hi')"}],
]  # fmt: skip


class OutputSizes(TorchDispatchMode):
    """Records the shape of every tensor an aten op produces."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[str, tuple[int, ...]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(value, torch.Tensor):
                self.shapes.append((str(func), tuple(value.shape)))
        return out


def _batches(tokenizer) -> tuple[dict, dict]:
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    examples = [tokenize_conversation(tokenizer, c) for c in CONVERSATIONS]
    packed = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(examples)
    padded = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)(examples)
    return packed, padded


def _lora_model(model_dir: Path, attention: str, ours: bool, dropout: float = 0.0):
    """The model as the trainer runs it: TRL's fused head, our head and fused LoRA layers on top when `ours`,
    LoRA with B non-zero (so both LoRA matrices get gradients)."""
    from peft import LoraConfig, get_peft_model
    from trl.trainer.utils import add_fused_lm_head

    register_packed_attention()
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation=attention)
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    if ours:
        install_labelled_head(model)
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules=["q_proj", "v_proj", "o_proj",
                      "down_proj"], init_lora_weights="gaussian", task_type="CAUSAL_LM")  # fmt: skip
    model = get_peft_model(model, lora)
    if ours:
        assert install_fused_lora(model) == 8  # 4 modules in each of 2 layers
    torch.manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.05)
    return model


def _lora_gradients(model) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}


# --- LoRA layers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_fused_lora_layers_equal_pefts_loss_and_gradients(tiny_model_dir: Path, dropout: float) -> None:
    """The same model, weights and (seeded) dropout masks: peft's LoRA forward, then the fused one."""
    tokenizer = load_tokenizer(tiny_model_dir)
    packed, _ = _batches(tokenizer)
    keys = ("input_ids", "position_ids", "labels", "cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k")
    results = []
    for fused in (False, True):
        model = _lora_model(tiny_model_dir, PACKED_SDPA, ours=False, dropout=dropout)
        if fused:
            install_fused_lora(model)
        model.train()
        torch.manual_seed(2)
        output = model(**{k: packed[k] for k in keys}, fused_lm_head=True, use_cache=False)
        output.loss.backward()
        results.append((output.loss.item(), _lora_gradients(model)))
    (want_loss, want), (got_loss, got) = results
    assert got_loss == pytest.approx(want_loss, rel=1e-6)
    assert want.keys() == got.keys() and len(got) == 16
    for name in want:
        assert want[name].abs().max() > 0, name
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-6, msg=name)


def test_fused_lora_runs_only_where_it_is_exact(tiny_model_dir: Path, monkeypatch) -> None:
    """Training calls are fused; inference (no gradients) and merged layers go to peft and answer the same."""
    calls = []
    apply = FusedLoraLinear.apply
    monkeypatch.setattr(FusedLoraLinear, "apply", lambda *args: calls.append(1) or apply(*args))
    reference = _lora_model(tiny_model_dir, "sdpa", ours=False)
    model = _lora_model(tiny_model_dir, "sdpa", ours=True)
    ids = torch.tensor([[1, 5, 9, 14, 3]])
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, reference(input_ids=ids).logits)
    assert calls == []
    model(input_ids=ids).logits.sum().backward()
    assert len(calls) == 8
    model.merge_adapter()
    with torch.no_grad():
        reference.merge_adapter()
        torch.testing.assert_close(model(input_ids=ids).logits, reference(input_ids=ids).logits)
    assert len(calls) == 8
    model.unmerge_adapter()
    model.base_model.model.model.layers[0].self_attn.q_proj.base_layer.weight.requires_grad_(True)
    model(input_ids=ids).logits.sum().backward()
    assert len(calls) == 8 + 7  # a base layer that trains keeps peft's forward
    assert lora_kernel("fp32", four_bit=False) == FUSED
    assert lora_kernel("bf16", four_bit=False) == lora_kernel("fp32", four_bit=True) == PEFT


# --- attention ------------------------------------------------------------------------------------


def test_packed_gradients_equal_unpacked_gradients(tiny_model_dir: Path) -> None:
    """Packed row + per-conversation attention + labelled-positions loss == padded batch + stock SDPA + full logits."""
    tokenizer = load_tokenizer(tiny_model_dir)
    packed, padded = _batches(tokenizer)
    reference = _lora_model(tiny_model_dir, "sdpa", ours=False)
    expected = reference(**{k: padded[k] for k in ("input_ids", "attention_mask", "labels")})
    expected.loss.backward()

    model = _lora_model(tiny_model_dir, PACKED_SDPA, ours=True)
    keys = ("input_ids", "position_ids", "labels", "cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k")
    output = model(**{k: packed[k] for k in keys}, fused_lm_head=True, use_cache=False)
    output.loss.backward()

    assert output.loss.item() == pytest.approx(expected.loss.item(), abs=1e-5)
    want, got = _lora_gradients(reference), _lora_gradients(model)
    assert want.keys() == got.keys() and len(got) == 16  # A and B of 4 modules in 2 layers
    for name in want:
        assert want[name].abs().max() > 0, name
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-6, msg=name)


def test_packed_attention_builds_no_row_by_row_mask(tiny_model_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_model_dir)
    packed, _ = _batches(tokenizer)
    row = packed["input_ids"].shape[1]
    register_packed_attention()
    shapes = {}
    for attention in ("sdpa", PACKED_SDPA):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation=attention).eval()
        with torch.no_grad(), OutputSizes() as recorder:
            model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False)
        shapes[attention] = [shape for _, shape in recorder.shapes if len(shape) >= 2 and shape[-2:] == (row, row)]
    assert shapes["sdpa"], "control: stock SDPA builds the dense block-diagonal mask"
    assert shapes[PACKED_SDPA] == []


def test_document_spans_from_collator_or_positions() -> None:
    positions = torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3]])
    assert document_spans(9, None, positions) == [(0, 3), (3, 5), (5, 9)]
    assert document_spans(9, torch.tensor([0, 3, 5, 9], dtype=torch.int32), None) == [(0, 3), (3, 5), (5, 9)]
    assert document_spans(4, None, torch.arange(4)[None]) is None  # one conversation: plain causal SDPA
    assert document_spans(4, None, None) is None


@pytest.mark.parametrize(
    ("cuda", "precision", "flash", "expected"),
    [(True, "bf16", True, FLASH_ATTENTION), (True, "fp32", True, PACKED_SDPA), (True, "bf16", False, PACKED_SDPA),
     (False, "fp32", True, PACKED_SDPA)],
)  # fmt: skip
def test_attention_selection(cuda: bool, precision: str, flash: bool, expected: str) -> None:
    assert attention_implementation(cuda, precision, flash) == expected


# --- loss -----------------------------------------------------------------------------------------


def test_chunked_loss_equals_full_cross_entropy() -> None:
    torch.manual_seed(0)
    hidden = torch.randn(50, 32, requires_grad=True)
    weight = torch.randn(300, 32) * 0.5
    targets = torch.randint(0, 300, (50,))
    per_token = torch.rand(50)  # non-uniform upstream gradients (weighted losses, accumulation scaling)

    log_probs, entropy, is_top1 = labelled_log_probs(hidden, weight, targets, rows=7)
    (log_probs * per_token).sum().backward()
    got_grad = hidden.grad.clone()
    hidden.grad = None
    full = torch.log_softmax(hidden @ weight.T, dim=-1)
    want = full.gather(1, targets[:, None]).squeeze(1)
    (want * per_token).sum().backward()

    torch.testing.assert_close(log_probs, want, rtol=0, atol=1e-5)
    torch.testing.assert_close(entropy, -(full.exp() * full).sum(-1).detach(), rtol=0, atol=1e-5)
    assert torch.equal(is_top1, full.argmax(-1) == targets)
    torch.testing.assert_close(got_grad, hidden.grad, rtol=1e-5, atol=1e-6)
    ce = torch.nn.functional.cross_entropy(hidden @ weight.T, targets)
    assert (-log_probs.mean()).item() == pytest.approx(ce.item(), abs=1e-5)


@pytest.mark.parametrize("rows", [1, 7, 64])
def test_soft_positions_train_towards_the_teachers_distribution(rows: int) -> None:
    """Marked positions: value sum q log p and the gradient of KL(q || p), q = softmax(teacher @ W.T); the rest
    stay log p(target). Chunks of any size find their own teacher rows."""
    torch.manual_seed(0)
    hidden = torch.randn(40, 32, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(300, 32, dtype=torch.float64) * 0.5
    targets = torch.randint(0, 300, (40,))
    soft = torch.rand(40) < 0.4
    teacher = torch.randn(int(soft.sum()), 32, dtype=torch.float64)
    per_token = torch.rand(40, dtype=torch.float64)

    log_probs, _, _ = labelled_log_probs(hidden, weight, targets, rows=rows, soft=soft, teacher=teacher)
    (log_probs * per_token).sum().backward()
    got_grad = hidden.grad.clone()
    hidden.grad = None
    full = torch.log_softmax(hidden @ weight.T, dim=-1)
    q = torch.softmax(teacher @ weight.T, dim=-1)
    want = torch.where(soft, torch.zeros(40, dtype=torch.float64), full.gather(1, targets[:, None]).squeeze(1))
    want = want.index_put((soft.nonzero().flatten(),), (q * full[soft]).sum(-1))
    (want * per_token).sum().backward()

    torch.testing.assert_close(log_probs.double(), want, rtol=0, atol=1e-5)
    torch.testing.assert_close(got_grad, hidden.grad, rtol=1e-5, atol=1e-6)  # the logits are fp32
    hidden.grad = None
    kl = (q * (q.log() - torch.log_softmax(hidden[soft] @ weight.T, dim=-1))).sum()  # KL(q || p) per position
    kl.backward()
    kl_grad = hidden.grad[soft]
    torch.testing.assert_close(got_grad[soft], -kl_grad * per_token[soft, None], rtol=1e-5, atol=1e-6)


def test_half_precision_head_keeps_fp32_statistics() -> None:
    torch.manual_seed(0)
    hidden = torch.randn(20, 32, dtype=torch.bfloat16, requires_grad=True)
    weight = torch.randn(300, 32, dtype=torch.bfloat16)
    targets = torch.randint(0, 300, (20,))
    log_probs, _, _ = labelled_log_probs(hidden, weight, targets, rows=6)
    log_probs.sum().backward()
    full = torch.log_softmax((hidden.detach() @ weight.T).float(), dim=-1)
    assert log_probs.dtype == torch.float32 and hidden.grad.dtype == torch.bfloat16
    torch.testing.assert_close(log_probs, full.gather(1, targets[:, None]).squeeze(1), rtol=0, atol=1e-5)


def test_loss_memory_is_bounded_by_the_chunk_not_tokens_times_vocab() -> None:
    tokens, vocab, budget = 1000, 2048, 1 << 18
    hidden = torch.randn(tokens, 16, requires_grad=True)
    weight = torch.randn(vocab, 16)
    targets = torch.randint(0, vocab, (tokens,))
    with OutputSizes() as recorder:
        log_probs, _, _ = labelled_log_probs(hidden, weight, targets, rows=rows_per_chunk(vocab, budget))
        log_probs.sum().backward()
    largest = max(torch.Size(shape).numel() for _, shape in recorder.shapes)
    assert largest * 4 <= budget // 2 < tokens * vocab * 4 // 10
    assert rows_per_chunk(128256) * 128256 * 8 <= 64 * 1024 * 1024


def test_fused_head_scores_only_labelled_positions_and_keeps_the_model_loss(tiny_model_dir: Path) -> None:
    from trl.trainer.utils import add_fused_lm_head

    tokenizer = load_tokenizer(tiny_model_dir)
    _, padded = _batches(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval().requires_grad_(False)  # frozen, as under LoRA
    vocab = model.config.vocab_size
    with torch.no_grad():
        expected = model(**{k: padded[k] for k in ("input_ids", "attention_mask", "labels")}).loss
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    install_labelled_head(model)
    labelled = int((padded["labels"][:, 1:] != IGNORE).sum())
    with torch.no_grad(), OutputSizes() as recorder:
        output = model(**{k: padded[k] for k in ("input_ids", "attention_mask", "labels")}, fused_lm_head=True)
        scaled = model(**{k: padded[k] for k in ("input_ids", "attention_mask", "labels")}, fused_lm_head=True,
                       num_items_in_batch=torch.tensor(2 * labelled))  # fmt: skip
    assert output.loss.item() == pytest.approx(expected.item(), abs=1e-5)
    assert scaled.loss.item() == pytest.approx(expected.item() / 2, abs=1e-5)
    assert int(output.label_mask.sum()) == labelled and output.entropy.shape == output.log_probs.shape
    scored_rows = sum(shape[0] for op, shape in recorder.shapes if op.startswith("aten.mm") and shape[-1] == vocab)
    assert scored_rows == 2 * labelled  # two calls, each projecting only the labelled positions onto the vocabulary


def test_distilled_tokens_train_towards_the_base_models_distribution(tiny_model_dir: Path) -> None:
    """A general replay conversation marked DISTILLED, packed with the person's, through the collator and the
    head as the trainer runs them: its tokens' gradient is that of KL(base || adapter), computed here from
    the full logits of the model with and without its (non-zero) LoRA; the person's tokens keep cross-entropy."""
    from peft import LoraConfig, get_peft_model
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling
    from trl.trainer.utils import add_fused_lm_head

    register_packed_attention()
    tokenizer = load_tokenizer(tiny_model_dir)
    person = marked_distilled(tokenize_split(tokenizer, CONVERSATIONS[:2], 256), False)
    general = marked_distilled(tokenize_split(tokenizer, CONVERSATIONS[2:], 256), True)
    rows = trainer_dataset(joined(person, general), 256, packing=True)
    collate = DistilledCollator(DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True))
    batch = collate(list(rows))
    assert batch[DISTILLED].shape == batch["labels"].shape
    assert int(batch[DISTILLED].sum()) == sum(label != IGNORE for label in general.examples[0]["labels"]) > 0

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation=PACKED_SDPA)
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    install_labelled_head(model.get_base_model(), adapter_off=model.disable_adapter)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)  # the adapter differs from the base

    model(**batch, fused_lm_head=True).loss.backward()
    got = _lora_gradients(model)
    model.zero_grad()
    inputs = {"input_ids": batch["input_ids"], "position_ids": batch["position_ids"]}
    with torch.no_grad(), model.disable_adapter():
        base = torch.log_softmax(model(**inputs).logits[:, :-1].float(), dim=-1)
    adapter = torch.log_softmax(model(**inputs).logits[:, :-1].float(), dim=-1)
    targets, distilled = batch["labels"][:, 1:], batch[DISTILLED][:, 1:].bool()
    labelled = targets != IGNORE
    cross_entropy = -adapter.gather(2, targets.clamp(min=0).unsqueeze(2)).squeeze(2)
    kl = (base.exp() * (base - adapter)).sum(-1)
    want = (cross_entropy[labelled & ~distilled].sum() + kl[distilled].sum()) / labelled.sum()
    want.backward()
    assert got.keys() == _lora_gradients(model).keys()
    for name, gradient in _lora_gradients(model).items():
        torch.testing.assert_close(got[name], gradient, rtol=1e-4, atol=1e-6, msg=name)


def test_trainable_head_goes_to_trls_own_fused_head(tiny_model_dir: Path) -> None:
    from trl.trainer.utils import add_fused_lm_head

    tokenizer = load_tokenizer(tiny_model_dir)
    _, padded = _batches(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).requires_grad_(False)
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    install_labelled_head(model)
    model.get_output_embeddings().weight.requires_grad_(True)  # e.g. a full fine-tune of the head
    output = model(**{k: padded[k] for k in ("input_ids", "attention_mask", "labels")}, fused_lm_head=True)
    output.loss.backward()
    assert model.get_output_embeddings().weight.grad is not None


@pytest.mark.parametrize(
    ("device", "triton", "expected"),
    [("cuda", True, TRITON), ("cuda", False, CHUNKED), ("cpu", True, CHUNKED), ("cpu", False, CHUNKED)],
)
def test_loss_kernel_selection(device: str, triton: bool, expected: str) -> None:
    assert loss_kernel(device, triton) == expected
    assert loss_kernel(device, triton, distils=True) == CHUNKED  # TRL's kernel has no soft targets


# --- settings chosen for the machine --------------------------------------------------------------


LLAMA_8B = SimpleNamespace(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                           head_dim=128, intermediate_size=14336, vocab_size=128256, tie_word_embeddings=False,
                           get_text_config=lambda: LLAMA_8B)  # fmt: skip


def _config(**overrides: object) -> TrainConfig:
    return TrainConfig(base_model_path="m", **overrides)


def test_gradient_checkpointing_only_where_memory_needs_it(tiny_model_dir: Path) -> None:
    tiny = AutoConfig.from_pretrained(tiny_model_dir)
    assert not choose_checkpointing(_config(), tiny, "fp32", 8 * 10**9).enabled
    on_24gb = choose_checkpointing(_config(max_seq_length=4096), LLAMA_8B, "bf16", 24 * 10**9)
    assert on_24gb.enabled and "more than 80% of 24.0 GB free" in on_24gb.reason
    on_80gb = choose_checkpointing(_config(max_seq_length=2048), LLAMA_8B, "bf16", 80 * 10**9)
    assert not on_80gb.enabled and "16.1 GB weights" in on_80gb.reason
    qlora = choose_checkpointing(_config(max_seq_length=1024, load_in_4bit=True), LLAMA_8B, "bf16", 24 * 10**9)
    assert not qlora.enabled and "4.0 GB weights" in qlora.reason  # 4-bit weights leave room for the activations
    assert choose_checkpointing(_config(use_gradient_checkpointing=True), tiny, "fp32", 10**12).enabled
    assert not choose_checkpointing(_config(use_gradient_checkpointing=False), LLAMA_8B, "bf16", 10**9).enabled
    assert choose_checkpointing(_config(), None, "fp32", 10**12).enabled  # unknown shape: the safe choice
    with_dropout = activation_bytes(LLAMA_8B, 1024, "bf16", 0.05)
    assert with_dropout > activation_bytes(LLAMA_8B, 1024, "bf16", 0.0)


def test_gradient_checkpointing_setting_is_validated() -> None:
    assert validate({"base_model_path": "m"}, TrainConfig, "c.yaml").use_gradient_checkpointing == "auto"
    assert validate({"base_model_path": "m", "use_gradient_checkpointing": False}, TrainConfig, "c.yaml") \
        .use_gradient_checkpointing is False  # fmt: skip
    with pytest.raises(MiltonError) as error:
        validate({"base_model_path": "m", "use_gradient_checkpointing": "sometimes"}, TrainConfig, "c.yaml")
    assert str(error.value) == (
        "c.yaml: 'use_gradient_checkpointing': must be true, false or auto (got 'sometimes')"
    )  # fmt: skip


def _plan(home: Path, base: Path, free_memory: int | None = None, **config: object):
    """The training plan on a CPU for a small export of CONVERSATIONS in `home`."""
    import json

    from milton_lora.settings import Settings
    from milton_lora.train.checks import make_plan

    exported = home / "training/data/exported"
    exported.mkdir(parents=True, exist_ok=True)
    for name in ("train.jsonl", "test.jsonl"):
        (exported / name).write_text("".join(json.dumps({"messages": c}) + "\n" for c in CONVERSATIONS * 4))
    train_config = TrainConfig(base_model_path=str(base), min_free_disk_gb=0, bf16=False, **config)
    return make_plan(Settings.from_env(home), train_config, Path("c.yaml"), "run_1", cuda=False, cuda_bf16=False,
                     free_memory=free_memory)  # fmt: skip


def test_plan_reports_the_chosen_settings(tmp_path: Path, tiny_model_dir: Path) -> None:
    measured = dict(_plan(tmp_path, tiny_model_dir).rows())
    assert measured["attention, loss"].startswith(f"{PACKED_SDPA}, {CHUNKED}")
    assert measured["LoRA layers"] == "fused forward and backward"
    assert measured["gradient checkpointing"].startswith("off (auto: ")
    assert measured["CPU threads"] == str(cpu_threads(1))
    starved = _plan(tmp_path, tiny_model_dir, free_memory=10**7)
    assert starved.checkpointing.enabled and "of 0.0 GB free" in dict(starved.rows())["gradient checkpointing"]


def test_a_base_model_that_transforms_its_logits_is_warned_it_cannot_distil(tmp_path: Path,
                                                                           tiny_model_dir: Path) -> None:  # fmt: skip
    import json
    import shutil

    capped = shutil.copytree(tiny_model_dir, tmp_path / "capped")
    model_config = json.loads((capped / "config.json").read_text())
    (capped / "config.json").write_text(json.dumps({**model_config, "final_logit_softcapping": 30.0}))
    warned = {
        (base.name, replay)
        for base in (tiny_model_dir, capped)
        for replay in (0.0, 0.5)
        if any("needs plain logits" in w for w in _plan(tmp_path, base, general_replay=replay).warnings)
    }
    assert warned == {("capped", 0.5)}
