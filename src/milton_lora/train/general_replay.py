"""General replay: questions on general topics answered by the base model itself, mixed into an SFT run.

Trained only on the person's history, a small adapter carries the person's style into everything: asked what the
capital of Germany is, it answers in the person's three-word manner and gets it wrong (`bench/persona`: 80% of
the general answers the base model knew kept, with no loss of style; README "Does the adapter learn the person?").
Replaying the base model's own answers to general questions teaches the adapter where the person's style belongs
and where the base model's answers stay (self-distillation: the base's answers cost the base model nothing to
keep).

Decisions:
- `general_replay` (train config) x the person's train conversations are mixed in, at most one per prompt of
  the pool: the shipped `milton_lora/data/general_prompts.txt` (200 questions and requests on general topics;
  none of them a question of `bench/persona`) or the file `general_replay_prompts` names (one prompt per line,
  `#` lines skipped). A larger history than the pool allows gets the whole pool, and the plan says so.
- The pool is drawn in an order seeded by the config's `seed`; each prompt is asked with the system prompt most
  of the person's train conversations carry (none when they carry none: the adapter then answers in the same
  setting as for the person) and answered greedily by the base model the run starts from, with at most
  `MAX_NEW_TOKENS` tokens. An answer cut at that budget is kept up to its last full sentence (training on a
  sentence cut in the middle would teach stopping mid-sentence) and dropped when it has none; asking goes on, a
  batch at a time, until enough answers are kept, the pool is used up, or `ASKED_PER_ANSWER` prompts per answer
  wanted were asked (a model that rarely stops costs a bounded time).
- They are kept in `runs/<run_id>/general_replay.json` with how they were made, apart from the person's
  `train.jsonl`: they are not the person's, so they carry no lineage (`memory forget` has nothing to remove in
  them), `eval`'s style profile never sees them, and a later `--from-production` run does not replay them (it
  draws its own). `train --resume` trains on the same ones.
- The plan generates them (also `train --dry-run`), because the schedule is sized on the tokens trained. A
  plan keeps what it generated in `training/general_replay_planned.json` with a key over everything the
  answers depend on (the pool's sha256, how many, the system prompt, the seed, the token budget, and the base
  model's folder: its path and each file's name, size and modification time, cheap even for 16 GB of
  weights); the next plan with the same key (the `train` after a `train --dry-run`) takes them instead of
  asking again (`metadata.json`: `general_replay.from_plan`), and the run that trains on them removes the file
  once its own `general_replay.json` holds them.
- `general_replay_target: distribution` (the shipped configs) trains each token of a general answer towards the
  base model's whole next-token distribution there (a KL term: `milton_lora.train.loss`, the base's distribution
  from a second forward pass with the adapter switched off), not only towards the token the base chose; the
  person's tokens keep plain cross-entropy. `answer` trains on the base's answer tokens alone.
- Preference runs (`method: dpo | kto`) mix in nothing.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from milton_lora.chat.conversations import Conversation
from milton_lora.config import TrainConfig
from milton_lora.errors import MiltonError
from milton_lora.fileio import atomic_write_text, sha256_bytes

GENERAL_PROMPTS = "general_prompts.txt"  # shipped in milton_lora/data/
MAX_NEW_TOKENS = 160
BATCH = 16
ASKED_PER_ANSWER = 3
SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s)")
SOURCE = "general"  # the `source` of each kept line

Complete = Callable[[list[Conversation]], list[tuple[str, bool]]]  # each reply, and whether it ended on its own


@dataclass
class GeneralReplay:
    """The general conversations an SFT run mixes in, and how they were made (`metadata.json`: `general_replay`)."""

    fraction: float
    requested: int
    prompts_file: str
    prompts_sha256: str
    pool: int
    system: str | None
    conversations: list[Conversation] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list, repr=False)  # the pool as read by the plan; not recorded
    asked: int = 0
    shortened: int = 0  # cut at the budget, kept up to the last full sentence
    dropped: int = 0  # cut at the budget with no full sentence
    seconds: float = 0.0
    from_plan: bool = False  # taken from an earlier plan with the same inputs (`train --dry-run`), not asked again

    def record(self) -> dict[str, Any]:
        made = asdict(self)
        made.pop("conversations")
        made.pop("prompts")
        return {**made, "count": len(self.conversations), "max_new_tokens": MAX_NEW_TOKENS}

    def describe(self) -> str:
        short = "" if len(self.conversations) >= self.requested else f" of {self.requested} wanted"
        short += " (the whole pool)" if self.requested == self.pool else ""
        made = "taken from the last plan's, " if self.from_plan else ""
        return (
            f"{len(self.conversations)}{short} general questions answered by the base model (general_replay "
            f"{self.fraction:g}; {made}of {self.asked} answers cut at {MAX_NEW_TOKENS} tokens, {self.shortened} "
            f"kept to their last full sentence, {self.dropped} dropped)"
        )


def read_prompts(path: Path) -> tuple[list[str], str]:
    """The prompts of a pool file (one per non-empty line, `#` lines skipped) and the file's sha256, read once."""
    try:
        raw = path.read_bytes()
        lines = raw.decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise MiltonError(
            f"{path}: cannot read the general replay prompts ({exc}); fix general_replay_prompts"
        ) from None
    prompts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise MiltonError(f"{path}: no prompts (one per line); fix the file or general_replay_prompts")
    return prompts, sha256_bytes(raw)


def common_system_prompt(conversations: list[Conversation]) -> str | None:
    """The system prompt most of the conversations open with; None when most have none."""
    systems = Counter(c[0]["content"] if c and c[0]["role"] == "system" else None for c in conversations)
    return systems.most_common(1)[0][0] if systems else None


def plan_general_replay(fraction: float, prompts_file: Path, person: list[Conversation]) -> GeneralReplay:
    """What to mix in: how many, from which pool, with which system prompt (nothing generated yet)."""
    prompts, digest = read_prompts(prompts_file)
    return GeneralReplay(
        fraction=fraction,
        requested=min(round(fraction * len(person)), len(prompts)),
        prompts_file=str(prompts_file),
        prompts_sha256=digest,
        pool=len(prompts),
        system=common_system_prompt(person),
        prompts=prompts,
    )


def answer_general_prompts(replay: GeneralReplay, complete: Complete, seed: int) -> GeneralReplay:
    """Ask the pool in seeded order, a batch at a time, until `requested` answers are kept (see the module's doc)."""
    started = time.perf_counter()
    prompts = list(replay.prompts)
    random.Random(seed).shuffle(prompts)
    head = [{"role": "system", "content": replay.system}] if replay.system else []
    prompts = prompts[: ASKED_PER_ANSWER * replay.requested]
    for start in range(0, len(prompts), BATCH):
        if len(replay.conversations) >= replay.requested:
            break
        asked = [[*head, {"role": "user", "content": p}] for p in prompts[start : start + BATCH]]
        for conversation, (reply, ended) in zip(asked, complete(asked), strict=True):
            replay.asked += 1
            kept = reply if ended else whole_sentences(reply)
            replay.shortened += bool(kept and not ended)
            replay.dropped += not kept
            if kept and len(replay.conversations) < replay.requested:
                replay.conversations.append([*conversation, {"role": "assistant", "content": kept}])
    replay.seconds = round(time.perf_counter() - started, 1)
    return replay


def whole_sentences(text: str) -> str:
    """`text` up to its last full sentence (a `.`, `!` or `?` followed by a space or a line end); "" when none."""
    ends = [m.end() for m in SENTENCE_END.finditer(text)]
    return text[: ends[-1]].strip() if ends else ""


def base_model_completer(base: Path) -> Complete:
    """The base model at `base`, greedy and batched (`inference.complete`), as a `Complete`."""
    from milton_lora.inference import complete, load_for_inference

    model, tokenizer = load_for_inference(base)

    def answer(conversations: list[Conversation]) -> list[tuple[str, bool]]:
        replies = complete(model, tokenizer, conversations, MAX_NEW_TOKENS, batch_size=BATCH)
        return [(r.text, r.finish_reason == "stop") for r in replies]

    return answer


def keep_general_replay(path: Path, replay: GeneralReplay | None, planned: Path | None = None) -> None:
    """Write `runs/<run_id>/general_replay.json`: how the conversations were made, then the conversations; the
    plan's copy (`planned`) is removed, the run's holds them now."""
    if replay is None:
        return
    write_general_replay(path, replay)
    if planned is not None:
        planned.unlink(missing_ok=True)


def write_general_replay(path: Path, replay: GeneralReplay, key: str | None = None) -> None:
    lines = [{"messages": c, "source": SOURCE} for c in replay.conversations]
    keyed = {"key": key} if key else {}
    atomic_write_text(path, json.dumps({**keyed, **replay.record(), "conversations": lines}, ensure_ascii=False) + "\n")


def read_general_replay(path: Path, key: str | None = None) -> GeneralReplay:
    """A run's kept general replay (`train --resume` trains on the same conversations); with `key`, a plan's, which
    must carry that key."""
    try:
        kept = json.loads(path.read_text())
        if kept.pop("key", None) != key:
            raise ValueError("made for other inputs")
        conversations = [line["messages"] for line in kept.pop("conversations")]
        for derived in ("count", "max_new_tokens"):
            kept.pop(derived, None)
        return GeneralReplay(**kept, conversations=conversations)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MiltonError(f"{path}: unreadable general replay ({exc}); start a new run instead of --resume") from None


def plan_key(replay: GeneralReplay, seed: int, base: Path) -> str:
    """What a plan's answers depend on (see the module's doc), as one digest."""
    stats = {p.name: p.stat() for p in base.iterdir() if p.is_file()}
    files = sorted((name, stat.st_size, stat.st_mtime_ns) for name, stat in stats.items())
    facts = [replay.prompts_sha256, replay.fraction, replay.requested, replay.system, seed, MAX_NEW_TOKENS,
             str(base.resolve()), files]  # fmt: skip
    return sha256_bytes(json.dumps(facts).encode())


def general_replay_for(kept: Path, planned: Path | None, prompts: Path | None, config: TrainConfig, base: Path,
                       person: list[Conversation], resume: bool) -> GeneralReplay | None:  # fmt: skip
    """What a run mixes in: a resumed run's `kept` ones, else a `planned` one made for the same inputs, else
    `prompts` answered now by the model at `base` (and kept in `planned`, when given); None when the run mixes
    none in (`prompts` None)."""
    if resume and kept.exists():
        return read_general_replay(kept)
    if prompts is None:
        return None
    replay = plan_general_replay(config.general_replay, prompts, person)
    if not replay.requested:
        return replay
    key = plan_key(replay, config.seed, base)
    if planned is not None and planned.exists():
        try:
            return replace(read_general_replay(planned, key), prompts=replay.prompts, from_plan=True)
        except MiltonError:
            pass  # made for other inputs: asked again, and replaced
    answered = answer_general_prompts(replay, base_model_completer(base), config.seed)
    if planned is not None:
        write_general_replay(planned, answered, key)
    return answered
