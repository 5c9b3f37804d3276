"""Run an evaluation plan, phase by phase: load both sides, held-out metrics, sanity prompts, benchmarks,
the style prompts ("sounds like you"), the judge; then the degenerate answers, the gate and the diagnosis;
then record and write.

`evaluate_run(settings, EvalRequest(run_id=...))` is the whole of `milton-lora eval` as one call: it
returns the `EvalResult` (metrics.json) whose `gate` says whether the adapter became a candidate.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timezone

from rich.console import Console

from milton_lora import __version__
from milton_lora.chat.masks import tokenize_split
from milton_lora.evaluate.degeneration import check_answers, degeneration_findings
from milton_lora.evaluate.diagnosis import diagnose
from milton_lora.evaluate.gate import decide
from milton_lora.evaluate.generation import ADAPTER, BASE, PRODUCTION, Sides, load_sides
from milton_lora.evaluate.judge import STYLE_EXAMPLES, JudgeClient, PairToJudge, head_to_head, judge_all
from milton_lora.evaluate.metrics import batch_count
from milton_lora.evaluate.outputs import record_and_write
from milton_lora.evaluate.plan import EvalPlan, EvalRequest, plan_evaluation
from milton_lora.evaluate.preference import preference_scores
from milton_lora.evaluate.progress import Phases
from milton_lora.evaluate.result import (
    Benchmarks,
    EvalResult,
    HeadToHead,
    Judgement,
    Preferences,
    ProductionScores,
    SanityAnswer,
    Scores,
    Style,
    StyleReply,
)
from milton_lora.evaluate.scoring import held_out_scores, score_benchmarks
from milton_lora.evaluate.style import style_match, style_profile
from milton_lora.fileio import sha256_file
from milton_lora.registry import Registry
from milton_lora.settings import ADAPTER_WEIGHTS, Settings


def evaluate_run(settings: Settings, request: EvalRequest, console: Console | None = None) -> EvalResult:
    """Plan and run one evaluation; progress bars on `console` when given."""
    registry = Registry.of(settings)
    plan = plan_evaluation(settings, registry, request)
    with Phases(console) as phases:
        return run_evaluation(plan, registry, phases)


def run_evaluation(plan: EvalPlan, registry: Registry, phases: Phases) -> EvalResult:
    """Every phase of the plan, the gate and the diagnosis; records the result in the registry and writes it."""
    judge = JudgeClient(plan.judge) if plan.judge else None
    try:
        if judge is not None:
            judge.check()  # before minutes of generation, not after
        with phases.phase("load", "loading models", 1) as advance:
            sides = load_sides(
                plan.base_model,
                plan.adapter_dir,
                plan.production_dir,
                plan.max_new_tokens,
                plan.batch_size,
                plan.mixed_batches,
            )
            examples = tokenize_split(sides.tokenizer, plan.held_out, plan.max_seq_length).examples
            advance(1)
        scores = held_out_phase(plan, sides, examples, phases)
        preferences = preference_phase(plan, sides, phases)
        sanity = sanity_phase(plan, sides, phases)
        benchmarks = benchmarks_phase(plan, sides, phases)
        style_replies = style_phase(plan, sides, phases)
        judgements = judge_phase(plan, sides, judge, sanity, style_replies, phases) if judge is not None else []
    finally:
        if judge is not None:
            judge.close()
    answers = Answers(sanity, benchmarks, style_replies, judgements)
    result = assemble(plan, len(examples), scores, answers, phases.timings(), preferences)
    return record_and_write(plan, registry, result, sanity, judgements, style_replies)


def held_out_phase(
    plan: EvalPlan, sides: Sides, examples: list[dict[str, list[int]]], phases: Phases
) -> dict[str, Scores]:
    sides_scored = 3 if sides.opponent == PRODUCTION else 2
    with phases.phase(
        "held_out_metrics", "held-out metrics", sides_scored * batch_count(examples, plan.batch_size)
    ) as advance:
        return held_out_scores(sides, examples, plan.batch_size, advance)


def preference_phase(plan: EvalPlan, sides: Sides, phases: Phases) -> Preferences | None:
    """Every side's preference accuracy on the held-out pairs; None when there are none."""
    if not plan.preference_pairs or plan.preference_file is None:
        return None
    sides_scored = 3 if sides.opponent == PRODUCTION else 2
    with phases.phase(
        "preferences", "held-out preferences", sides_scored * -(-2 * len(plan.preference_pairs) // plan.batch_size)
    ) as advance:
        return preference_scores(sides, plan.preference_file, plan.preference_pairs, plan.max_seq_length,
                                 plan.batch_size, advance)  # fmt: skip


def sanity_phase(plan: EvalPlan, sides: Sides, phases: Phases) -> list[SanityAnswer]:
    conversations = [prompt.conversation() for prompt in plan.sanity.prompts]
    with phases.phase("sanity", "sanity prompts", len(conversations)) as advance:
        answers = sides.pairs(conversations, advance)
    return [
        SanityAnswer(id=prompt.id, messages=messages, adapter=ours, opponent=theirs)
        for prompt, messages, (ours, theirs) in zip(plan.sanity.prompts, conversations, answers, strict=True)
    ]


def benchmarks_phase(plan: EvalPlan, sides: Sides, phases: Phases) -> Benchmarks:
    tests = plan.benchmarks.tests
    with phases.phase("benchmarks", "benchmarks", 2 * len(tests)) as advance:  # answers, then checks
        answers: dict[int, tuple[str, str]] = {}
        for budget in dict.fromkeys(test.max_new_tokens for test in tests):  # one pass per budget, in file order
            picked = [i for i, test in enumerate(tests) if test.max_new_tokens == budget]
            found = sides.pairs([tests[i].conversation() for i in picked], advance, budget)
            answers.update(zip(picked, found, strict=True))
        return score_benchmarks(tests, [answers[i] for i in range(len(tests))], plan.sandbox, advance)


def style_phase(plan: EvalPlan, sides: Sides, phases: Phases) -> list[StyleReply]:
    """Every side answers the style prompts (production and the base both, when production is the opponent)."""
    if not plan.style_prompts:
        return []
    prompts = [sides.fit(p.messages, plan.max_seq_length) for p in plan.style_prompts]
    passes = 1 if sides.opponent == BASE else 1.5
    with phases.phase("style", "style prompts", passes * len(prompts)) as advance:
        pairs = sides.pairs(prompts, advance)
        base = sides.base_answers(prompts, lambda n: advance(n / 2)) if sides.opponent != BASE else None
    return [
        StyleReply(id=p.id, messages=messages, person=p.reply, adapter=ours,
                   production=theirs if base is not None else None, base=base[i] if base is not None else theirs)
        for i, (p, messages, (ours, theirs)) in enumerate(zip(plan.style_prompts, prompts, pairs, strict=True))
    ]  # fmt: skip


def style_examples(replies: list[str]) -> list[str]:
    """The person's replies the style judge sees: a fixed-seed sample of the kept ones."""
    return random.Random(0).sample(replies, min(STYLE_EXAMPLES, len(replies)))


def style_result(plan: EvalPlan, replies: list[StyleReply], judged: HeadToHead | None) -> Style | None:
    """The profile of the person's kept replies and each side's match on the style prompts."""
    if not replies:
        return None
    profile = style_profile(plan.style_replies)
    production = [r.production for r in replies if r.production is not None]
    return Style(
        profile=profile,
        prompts=len(replies),
        adapter=style_match(profile, [r.adapter for r in replies]),
        production=style_match(profile, production) if production else None,
        base=style_match(profile, [r.base for r in replies]),
        held_out=style_match(profile, [r.person for r in replies]),
        judged=judged,
    )


def judge_phase(
    plan: EvalPlan,
    sides: Sides,
    judge: JudgeClient,
    sanity: list[SanityAnswer],
    style: list[StyleReply],
    phases: Phases,
) -> list[Judgement]:
    """Both sides answer the held-out prompts (the sanity answers are reused); the judge compares every pair,
    and says of the style prompts' pairs which sounds more like a few of the person's own replies."""
    held_out = [(name, sides.fit(messages, plan.max_seq_length)) for name, messages in plan.judge_prompts]
    pairs_count = len(held_out) + len(sanity) + len(style)
    with phases.phase("judge", "judge", len(held_out) + 2 * pairs_count) as advance:
        answers = sides.pairs([messages for _, messages in held_out], advance)
        pairs = [
            PairToJudge(name, "held_out", messages, ours, theirs)
            for (name, messages), (ours, theirs) in zip(held_out, answers, strict=True)
        ]
        pairs += [PairToJudge(s.id, "sanity", s.messages, s.adapter, s.opponent) for s in sanity]
        pairs += [PairToJudge(r.id, "style", r.messages, r.adapter, r.production or r.base) for r in style]
        return judge_all(judge, pairs, advance, style_examples(plan.style_replies))


@dataclass(frozen=True)
class Answers:
    """What both sides answered, phase by phase."""

    sanity: list[SanityAnswer]
    benchmarks: Benchmarks
    style: list[StyleReply]
    judgements: list[Judgement]

    def pairs(self) -> list[tuple[str, str, str]]:
        """(id, adapter's answer, opponent's answer) for every answer generated."""
        found = [(s.id, s.adapter, s.opponent) for s in self.sanity]
        found += [(r.id, r.adapter.answer, r.opponent.answer) for r in self.benchmarks.results]
        found += [(r.id, r.adapter, r.production if r.production is not None else r.base) for r in self.style]
        return found


def assemble(plan: EvalPlan, scored: int, scores: dict[str, Scores], answers: Answers, timings: dict[str, float],
             preferences: Preferences | None = None) -> EvalResult:  # fmt: skip
    """The result before it is recorded (status: what the registry says after recording)."""
    adapter, base = scores[ADAPTER], scores[BASE]
    sanity, benchmarks, judgements = answers.sanity, answers.benchmarks, answers.judgements
    production = (
        ProductionScores(run_id=plan.opponent.run_id or "", **scores[PRODUCTION].model_dump())
        if PRODUCTION in scores
        else None
    )
    matchup, style_matchup = None, None
    if plan.judge is not None:
        quality = [j for j in judgements if j.source != "style"]
        styled = [j for j in judgements if j.source == "style"]
        matchup = head_to_head(quality, plan.opponent.label, plan.judge.model) if quality else None
        style_matchup = head_to_head(styled, plan.opponent.label, plan.judge.model) if styled else None
    style = style_result(plan, answers.style, style_matchup)
    degeneration = check_answers(answers.pairs())
    findings = diagnose(adapter, base, sanity, plan.gate.diagnosis, plan.facts, plan.opponent.label)
    return EvalResult(
        run_id=plan.run_id,
        evaluated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        tool_version=__version__,
        adapter_sha256=sha256_file(plan.adapter_dir / ADAPTER_WEIGHTS),
        test_file=str(plan.test_file),
        test_file_sha256=sha256_file(plan.test_file),
        test_conversations=scored,
        opponent=plan.opponent,
        adapter=adapter,
        base=base,
        production=production,
        delta_vs_base=adapter.minus(base),
        delta_vs_production=adapter.minus(production) if production else None,
        benchmarks=benchmarks,
        head_to_head=matchup,
        style=style,
        preferences=preferences,
        degeneration=degeneration,
        gate=decide(plan.gate, benchmarks, matchup, plan.opponent, plan.auto_promote, style, preferences),
        diagnosis=findings + degeneration_findings(degeneration, plan.opponent.label),
        status="training",
        timings=timings,
    )
