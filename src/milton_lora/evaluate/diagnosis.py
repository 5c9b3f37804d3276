"""Evaluation that explains itself: a held-out loss that is no better than the base model's, degenerate sanity
answers, their likely causes, and the config keys that address them.

The held-out verdict reads the curves training recorded (the adapter's `metadata.json`: steps run, the step
whose checkpoint became the adapter, why training ended) against the base model's held-out loss, never
against an absolute perplexity (a 135M model's perplexity on chat is never near 3; an 8B model's is):

- worse than the base (the adapter's held-out loss above the base model's): it learned the training
  conversations instead of the person; train LESS hard: `learning_rate` halved first.
- little learned (less than `min_loss_gain` below the base's, `gate.yaml` `diagnosis:`): if the held-out
  loss was still falling at the last step, train MORE (`min_steps` or `num_epochs` up first); if it had
  peaked earlier (the best checkpoint was kept), more data is what helps, not other epochs.

Every finding lists its recommended change first (the key and the new value), then alternatives, and all
findings share the one direction the curves gave: a summary never advises more and fewer epochs at once,
and a repetitive answer after too little training points at generation, not at the learning rate.
A sanity answer is degenerate when it is empty, repeats itself, or echoes the prompt back.
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
LESS, MORE = "less", "more"  # the one direction of a diagnosis: train less hard, or longer
RECOMMENDED = "recommended: "


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
    min_steps: int | None = None
    global_steps: int | None = None
    best_step: int | None = None
    stop_reason: str | None = None

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
            record.config_value("min_steps"),
            record.results.global_steps,
            record.results.best_step,
            record.results.stop_reason,
        )

    @property
    def config(self) -> str:
        return self.config_path or "your training config"

    @property
    def still_improving(self) -> bool:
        """The held-out loss was lowest at the last step (or training recorded no curve)."""
        if self.best_step is None or self.global_steps is None:
            return self.stop_reason != "early_stopping"
        return self.best_step >= self.global_steps

    def curve(self) -> str:
        if self.best_step is None or self.global_steps is None:
            return ""
        return f"held-out loss lowest at step {self.best_step} of {self.global_steps} (that checkpoint is the adapter)"

    def export_more(self) -> str:
        days = self.window_days * 2 if self.window_days else 90
        had = f" (this run learned from {self.train_examples} conversations" if self.train_examples else ""
        window = f" of {self.window_days} days)" if had and self.window_days else (")" if had else "")
        return f"export more days{had}{window}: milton-lora export --days {days}, then train again"

    def lower_learning_rate(self) -> str:
        if self.learning_rate is None:
            return f"lower learning_rate in {self.config}"
        return f"learning_rate in {self.config}: {self.learning_rate:g} → {self.learning_rate / 2:g}"

    def higher_learning_rate(self) -> str:
        if self.learning_rate is None:
            return f"raise learning_rate in {self.config}"
        return f"learning_rate in {self.config}: {self.learning_rate:g} → {self.learning_rate * 2:g}"

    def train_longer(self) -> str:
        if self.max_steps and self.max_steps > 0:
            return f"max_steps in {self.config}: {self.max_steps} → {self.max_steps * 2}"
        if self.min_steps and self.global_steps and self.global_steps <= self.min_steps:
            return f"min_steps in {self.config}: {self.min_steps} → {self.min_steps * 2}"
        now = f": {self.num_epochs:g} → {self.num_epochs + 1:g}" if self.num_epochs else ""
        return f"num_epochs in {self.config}{now}"

    def lower_rank(self) -> str:
        now = f": {self.lora_r} → {max(1, self.lora_r // 2)}" if self.lora_r else ""
        return f"lora_r in {self.config}{now}"

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
    """The held-out verdict first (it sets the direction), then the degenerate answers, advised the same way."""
    verdict = held_out_verdict(adapter, base, thresholds, facts)
    direction = verdict[1] if verdict else None
    return ([verdict[0]] if verdict else []) + degenerate_answers(sanity, facts, opponent, direction)


def held_out_verdict(adapter: Scores, base: Scores, thresholds: DiagnosisThresholds,
                     facts: TrainingFacts) -> tuple[Finding, str | None] | None:  # fmt: skip
    """The finding about the adapter's held-out loss against the base model's, and the direction it gives."""
    if adapter.eval_loss is None or base.eval_loss is None:
        return None
    gain = base.eval_loss - adapter.eval_loss
    curve = [facts.curve()] if facts.curve() else []
    compared = f"held-out eval loss {adapter.eval_loss:.4f} vs the base model's {base.eval_loss:.4f}"
    if gain < 0:
        finding = Finding(
            signal="worse than its base model",
            observed=f"{compared} (+{-gain:.4f})" + (f"; {curve[0]}" if curve else ""),
            causes=[
                "a learning rate too high for this much data: it learned the training conversations by heart "
                "before it learned their style",
                "held-out conversations unlike the training ones (a short export window)",
            ],
            fixes=_recommend(facts.lower_learning_rate(), facts.lower_rank(), facts.export_more(), facts.curves()),
        )
        return finding, LESS
    if gain >= thresholds.min_loss_gain * base.eval_loss:
        return None
    observed = (f"{compared}: {gain / base.eval_loss:.1%} lower, less than min_loss_gain "
                f"{thresholds.min_loss_gain:.0%}" + (f"; {curve[0]}" if curve else ""))  # fmt: skip
    if facts.still_improving:
        finding = Finding(
            signal="little learned",
            observed=observed,
            causes=[
                "too few optimizer steps: the held-out loss was still falling when training ended",
                "a learning rate too low to move the adapter in this many steps",
            ],
            fixes=_recommend(facts.train_longer(), facts.higher_learning_rate(), facts.export_more(), facts.curves()),
        )
        return finding, MORE
    finding = Finding(
        signal="little learned",
        observed=observed,
        causes=[
            "too little data: the held-out loss stopped improving early, and the best checkpoint was kept",
            "conversations too varied for a small adapter to find their common style",
        ],
        fixes=_recommend(facts.export_more(), facts.lower_learning_rate(), facts.curves()),
    )
    return finding, None


def _recommend(first: str, *alternatives: str) -> list[str]:
    """The fixes of a finding: the one recommended change, then the alternatives."""
    return [RECOMMENDED + first, *(f"or: {alternative}" for alternative in alternatives)]


def degenerate_answers(sanity: list[SanityAnswer], facts: TrainingFacts, opponent: str,
                       direction: str | None = None) -> list[Finding]:  # fmt: skip
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
                fixes=_degenerate_fixes(kind, facts, direction),
            )
        )
    return findings


_DEGENERATE_CAUSES = {
    "empty": [
        "the adapter learned to end its turn at once (empty or one-word assistant turns in the export)",
        "training and generation disagree on the chat template's end-of-turn token",
    ],
    "repetitive": [
        "a learning rate too high: the model collapsed onto a phrase of the training conversations",
        "the base model's end-of-turn token is not among its stop tokens, so it never stops",
    ],
    "echoing the prompt": [
        "training conversations where the assistant repeats the user (duplicated turns in an import)",
        "a chat template mismatch: the model continues the user's turn",
    ],
}


def _degenerate_fixes(kind: str, facts: TrainingFacts, direction: str | None) -> list[str]:
    """What addresses a degenerate answer, in the held-out verdict's direction (never its opposite)."""
    export = facts.train_file or "the training split"
    stop_tokens = "check eos_token_id in the base model's generation_config.json (README: Troubleshooting)"
    if kind == "empty":
        return _recommend(
            f"look for empty assistant turns in {export}, re-export, train again",
            "check the base model's chat template ends assistant turns the way its generation_config stops",
        )
    if kind == "repetitive":
        if direction == MORE:  # too little training cannot have collapsed it: generation does not stop
            return _recommend(stop_tokens, facts.curves())
        return _recommend(facts.lower_learning_rate(), facts.lower_rank(), stop_tokens)
    return _recommend(
        f"look for assistant turns that copy the user's in {export} (milton-lora memory stats shows sources)",
        "point base_model_path at the instruct model whose chat template you train with",
    )


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
