"""Evaluation that explains itself: poor held-out metrics and degenerate sanity answers, their likely
causes, and the commands or config keys that address them.

Held-out metrics are poor above `max_perplexity` or below `min_token_accuracy` (`gate.yaml`,
`diagnosis:`); an adapter whose held-out loss is worse than its base model's is always flagged.
A sanity answer is degenerate when it is empty, repeats itself, or echoes the prompt back. Advice
names the values the run was trained with (from the adapter's `metadata.json`) when they are known.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from difflib import SequenceMatcher

from milton_lora.evaluate.gate import DiagnosisThresholds
from milton_lora.evaluate.result import Finding, SanityAnswer, Scores
from milton_lora.record import TrainingRecord

_WORD = re.compile(r"\w+")
_MIN_WORDS_FOR_REPETITION = 8
_MIN_DISTINCT_TRIGRAMS = 0.5  # below this share of distinct word trigrams, an answer repeats itself
_MIN_CHARS_FOR_COMPRESSION = 40
_MAX_COMPRESSION_RATIO = 0.3  # text that compresses this well is a few characters over and over
_ECHO_SIMILARITY = 0.8
_MIN_ECHO_CHARS = 12  # a short prompt ("Go") may start a real answer


@dataclass(frozen=True)
class TrainingFacts:
    """What training recorded that advice can name (None when the adapter was made elsewhere)."""

    run_id: str
    config_path: str | None = None
    learning_rate: float | None = None
    num_epochs: float | None = None
    max_steps: int | None = None
    lora_r: int | None = None
    window_days: int | None = None
    train_examples: int | None = None
    train_file: str | None = None

    @classmethod
    def from_record(cls, run_id: str, record: TrainingRecord | None) -> TrainingFacts:
        if record is None:
            return cls(run_id)
        return cls(
            run_id,
            record.config_path,
            record.config_value("learning_rate"),
            record.config_value("num_epochs"),
            record.config_value("max_steps"),
            record.config_value("lora_r"),
            record.data.export_window_days,
            record.data.train_examples,
            record.data.train_file,
        )

    @property
    def config(self) -> str:
        return self.config_path or "your training config"

    def export_more(self) -> str:
        days = self.window_days * 2 if self.window_days else 90
        had = f" (this run learned from {self.train_examples} conversations" if self.train_examples else ""
        window = f" of {self.window_days} days)" if had and self.window_days else (")" if had else "")
        return f"export more days{had}{window}: milton-lora export --days {days}, then train again"

    def lower_learning_rate(self) -> str:
        if self.learning_rate is None:
            return f"lower learning_rate in {self.config}"
        return f"lower learning_rate in {self.config}: {self.learning_rate:g} → {self.learning_rate / 2:g}"

    def more_epochs(self) -> str:
        if self.max_steps and self.max_steps > 0:
            return f"train longer: max_steps {self.max_steps} → {self.max_steps * 2} (or -1 to use num_epochs)"
        now = f": {self.num_epochs:g} → {self.num_epochs + 1:g}" if self.num_epochs else ""
        return f"more num_epochs in {self.config}{now}"

    def fewer_epochs(self) -> str:
        now = f": {self.num_epochs:g} → {max(1.0, self.num_epochs - 1):g}" if self.num_epochs else ""
        return f"fewer num_epochs in {self.config}{now}"

    def lower_rank(self) -> str:
        now = f": {self.lora_r} → {max(1, self.lora_r // 2)}" if self.lora_r else ""
        return f"a lower lora_r in {self.config}{now}"

    def curves(self) -> str:
        return f"compare train and eval loss: tensorboard --logdir runs/{self.run_id}/logs"


def diagnose(
    adapter: Scores,
    base: Scores,
    sanity: list[SanityAnswer],
    thresholds: DiagnosisThresholds,
    facts: TrainingFacts,
    opponent: str,
) -> list[Finding]:
    findings = [
        f
        for f in (poor_metrics(adapter, base, thresholds, facts), worse_than_base(adapter, base, facts))
        if f is not None
    ]
    return findings + degenerate_answers(sanity, facts, opponent)


def poor_metrics(
    adapter: Scores, base: Scores, thresholds: DiagnosisThresholds, facts: TrainingFacts
) -> Finding | None:
    poor = []
    if adapter.perplexity is not None and adapter.perplexity > thresholds.max_perplexity:
        poor.append(f"perplexity {adapter.perplexity:.2f} > {thresholds.max_perplexity:.1f}")
    if adapter.token_accuracy is not None and adapter.token_accuracy < thresholds.min_token_accuracy:
        poor.append(f"token accuracy {adapter.token_accuracy:.0%} < {thresholds.min_token_accuracy:.0%}")
    if not poor:
        return None
    causes = [
        "too few conversations to learn your style from",
        "too few training steps to converge",
        "a learning rate too high to settle (loss jumps around)",
    ]
    if base.perplexity is not None and adapter.perplexity is not None and adapter.perplexity < base.perplexity:
        causes.insert(
            0,
            f"the base model alone is at perplexity {base.perplexity:.2f}: the adapter improved on it, "
            "but not enough yet",
        )
    return Finding(
        signal="poor held-out metrics",
        observed="; ".join(poor),
        causes=causes,
        fixes=[facts.export_more(), facts.more_epochs(), facts.lower_learning_rate(), facts.curves()],
    )


def worse_than_base(adapter: Scores, base: Scores, facts: TrainingFacts) -> Finding | None:
    if adapter.eval_loss is None or base.eval_loss is None or adapter.eval_loss <= base.eval_loss:
        return None
    return Finding(
        signal="worse than its base model",
        observed=f"held-out eval loss {adapter.eval_loss:.4f} vs the base model's {base.eval_loss:.4f} "
        f"(+{adapter.eval_loss - base.eval_loss:.4f})",
        causes=[
            "overfitting: it learned the training conversations by heart (eval loss rises while train loss falls)",
            "a learning rate too high (loss spikes)",
            "held-out conversations unlike the training ones (a short export window)",
        ],
        fixes=[
            facts.fewer_epochs(),
            facts.lower_learning_rate(),
            facts.lower_rank(),
            facts.export_more(),
            facts.curves(),
        ],
    )


def degenerate_answers(sanity: list[SanityAnswer], facts: TrainingFacts, opponent: str) -> list[Finding]:
    kinds = {"empty": is_empty, "repetitive": is_repetitive, "echoing the prompt": is_echo}
    findings = []
    for kind, test in kinds.items():
        hits = [s for s in sanity if test(s.adapter, _last_user(s))]
        if not hits:
            continue
        shared = [s.id for s in hits if test(s.opponent, _last_user(s))]
        causes = list(_DEGENERATE_CAUSES[kind])
        if shared:
            causes.insert(
                0,
                f"{opponent} answers {', '.join(shared)} the same way: that part comes from the base "
                "model or the prompt, not from this training",
            )
        findings.append(
            Finding(
                signal=f"sanity answers {kind}",
                observed=f"{len(hits)} of {len(sanity)} sanity answers {kind}: {', '.join(s.id for s in hits)}",
                causes=causes,
                fixes=_degenerate_fixes(kind, facts),
            )
        )
    return findings


_DEGENERATE_CAUSES = {
    "empty": [
        "the adapter learned to end its turn at once (empty or one-word assistant turns in the export)",
        "training and generation disagree on the chat template's end-of-turn token",
    ],
    "repetitive": [
        "a learning rate too high or too many epochs: the model collapsed onto a phrase",
        "the base model's end-of-turn token is not among its stop tokens, so it never stops",
    ],
    "echoing the prompt": [
        "training conversations where the assistant repeats the user (duplicated turns in an import)",
        "a chat template mismatch: the model continues the user's turn",
    ],
}


def _degenerate_fixes(kind: str, facts: TrainingFacts) -> list[str]:
    export = facts.train_file or "the training split"
    if kind == "empty":
        return [
            f"look for empty assistant turns in {export}, re-export, train again",
            "check the base model's chat template ends assistant turns the way its generation_config stops",
        ]
    if kind == "repetitive":
        return [
            facts.lower_learning_rate(),
            facts.fewer_epochs(),
            "check eos_token_id in the base model's generation_config.json (README: Troubleshooting)",
        ]
    return [
        f"look for assistant turns that copy the user's in {export} (milton-lora memory stats shows sources)",
        "point base_model_path at the instruct model whose chat template you train with",
    ]


def is_empty(answer: str, prompt: str) -> bool:
    return not answer.strip()


def is_repetitive(answer: str, prompt: str) -> bool:
    words = _WORD.findall(answer.lower())
    if len(words) >= _MIN_WORDS_FOR_REPETITION:
        trigrams = list(zip(words, words[1:], words[2:], strict=False))
        return len(set(trigrams)) / len(trigrams) < _MIN_DISTINCT_TRIGRAMS
    text = answer.strip()
    if len(text) < _MIN_CHARS_FOR_COMPRESSION:
        return False
    return len(zlib.compress(text.encode())) / len(text.encode()) < _MAX_COMPRESSION_RATIO


def is_echo(answer: str, prompt: str) -> bool:
    ours, theirs = _normal(answer), _normal(prompt)
    if not ours or not theirs:
        return False
    starts_with_it = len(theirs) >= _MIN_ECHO_CHARS and ours.startswith(theirs)
    return starts_with_it or SequenceMatcher(None, ours, theirs).ratio() >= _ECHO_SIMILARITY


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def _last_user(answer: SanityAnswer) -> str:
    return next((m["content"] for m in reversed(answer.messages) if m["role"] == "user"), "")
