"""General replay (`train/general_replay.py`): the base model's answers to general questions mixed into an SFT run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from helpers import REPO, copy_home
from milton_lora.demo.samples import write_cpu_config
from milton_lora.settings import RUN_GENERAL_REPLAY, RUN_TRAIN_DATA, shipped
from milton_lora.train import general_replay
from milton_lora.train.general_replay import (
    ASKED_PER_ANSWER,
    GENERAL_PROMPTS,
    answer_general_prompts,
    plan_general_replay,
    read_general_replay,
    read_prompts,
)

SYSTEM = "You are Milton."


def person(with_system: int, without: int) -> list[list[dict[str, str]]]:
    turns = [{"role": "user", "content": "Book the dentist."}, {"role": "assistant", "content": "Booked, 9:00."}]
    return [[{"role": "system", "content": SYSTEM}, *turns]] * with_system + [turns] * without


def pool(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "prompts.txt"
    path.write_text("# a comment line\n\n" + "".join(f"Question {i}?\n" for i in range(count)))
    return path


def number_of(conversation: list[dict[str, str]]) -> int:
    return int(conversation[-1]["content"].split()[1].rstrip("?"))


def ends_on_even_questions(conversations: list[list[dict[str, str]]]) -> list[tuple[str, bool]]:
    """A scripted base model: it answers every question, and stops on its own only for even-numbered ones."""
    return [(f"The answer to {number_of(c)}.", number_of(c) % 2 == 0) for c in conversations]


def counting(asked: list[int]) -> general_replay.Complete:
    """`ends_on_even_questions`, appending to `asked` how many questions each call asks."""

    def counted(conversations: list[list[dict[str, str]]]) -> list[tuple[str, bool]]:
        asked.append(len(conversations))
        return ends_on_even_questions(conversations)

    return counted


def test_cut_answers_are_dropped_and_asking_stops_when_enough_are_kept(tmp_path: Path) -> None:
    replay = plan_general_replay(0.5, pool(tmp_path, 100), person(7, 3))
    assert (replay.requested, replay.pool, replay.system) == (5, 100, SYSTEM)
    asked: list[int] = []

    def complete(conversations: list[list[dict[str, str]]]) -> list[tuple[str, bool]]:
        asked.extend(number_of(c) for c in conversations)
        return ends_on_even_questions(conversations)

    answer_general_prompts(replay, complete, seed=1)
    assert len(replay.conversations) == 5 and len(asked) == ASKED_PER_ANSWER * 5  # one batch was enough
    for system, question, answer in replay.conversations:
        assert system == {"role": "system", "content": SYSTEM} and question["role"] == "user"
        assert number_of([question]) % 2 == 0 and answer["content"].startswith("The answer")
    assert replay.asked == 15 and replay.dropped == sum(n % 2 for n in asked)  # odd ones were cut with no full sentence
    record = replay.record()
    assert record["count"] == 5 and record["asked"] == 15 and "conversations" not in record


def test_the_draw_is_seeded_and_a_model_that_never_stops_costs_a_bounded_time(tmp_path: Path) -> None:
    prompts = pool(tmp_path, 200)

    def drawn(seed: int) -> list[str]:
        replay = answer_general_prompts(plan_general_replay(0.2, prompts, person(0, 20)), ends_on_even_questions, seed)
        assert replay.system is None and all(len(c) == 2 for c in replay.conversations)
        return [c[0]["content"] for c in replay.conversations]

    assert drawn(3) == drawn(3) != drawn(4)

    never = answer_general_prompts(
        plan_general_replay(0.2, prompts, person(0, 20)), lambda c: [("…", False)] * len(c), 3
    )
    assert never.conversations == [] and never.asked == never.dropped == ASKED_PER_ANSWER * 4
    assert "0 of 4 wanted" in never.describe()


def test_a_history_larger_than_the_pool_gets_the_whole_pool(tmp_path: Path) -> None:
    replay = plan_general_replay(0.4, pool(tmp_path, 10), person(50, 0))
    assert replay.requested == 10 and "(the whole pool)" in replay.describe()


def test_an_empty_or_missing_pool_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n")
    with pytest.raises(Exception, match="no prompts"):
        read_prompts(empty)
    with pytest.raises(Exception, match="cannot read the general replay prompts"):
        read_prompts(tmp_path / "missing.txt")


def test_the_shipped_pool_holds_no_question_of_the_persona_benchmark() -> None:
    """What the benchmark asks to measure kept knowledge must not be what training replays."""
    sys.path.insert(0, str(REPO / "bench" / "persona"))
    from personas import GENERAL

    shipped_prompts = {p.lower() for p in read_prompts(shipped(GENERAL_PROMPTS))[0]}
    assert len(shipped_prompts) == 200
    asked = {question.lower() for questions in GENERAL.values() for question, _ in questions}
    assert not shipped_prompts & asked


def test_a_run_mixes_them_in_and_keeps_them_apart_from_the_persons(
    trained_home: Path, tmp_path: Path, tiny_model_dir: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = copy_home(trained_home, tmp_path / "home")
    config = home / "training/configs/general.yaml"
    write_cpu_config(config, tiny_model_dir, REPO / "training/configs/lora_light.yaml", general_replay=0.5,
                     general_replay_prompts=str(pool(tmp_path, 60)))  # fmt: skip
    asked: list[int] = []
    monkeypatch.setattr(general_replay, "base_model_completer", lambda base: counting(asked))

    planned = cli("--home", str(home), "train", "--config", str(config), "--dry-run")
    assert planned.exit_code == 0, planned.stderr
    assert "general questions answered by the base model" in planned.stdout
    kept_by_plan = home / "training" / "general_replay_planned.json"
    assert asked and kept_by_plan.exists()
    asked_by_plan = len(asked)

    result = cli("--home", str(home), "train", "--config", str(config))
    assert result.exit_code == 0, result.stderr
    assert len(asked) == asked_by_plan  # not asked again
    assert not kept_by_plan.exists()  # the run's own general_replay.json holds them now
    run_dir = max((home / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    metadata = json.loads((home / "adapters" / run_dir.name / "metadata.json").read_text())
    exported = (home / "training/data/exported/train.jsonl").read_text().splitlines()
    kept_person = (run_dir / RUN_TRAIN_DATA).read_text().splitlines()
    general = read_general_replay(run_dir / RUN_GENERAL_REPLAY)
    assert len(kept_person) == len(exported)  # the person's file holds only the person's conversations
    assert len(general.conversations) == round(0.5 * len(exported)) == metadata["general_replay"]["count"]
    assert metadata["data"]["train_examples"] == len(exported) + len(general.conversations)
    assert not any("The answer to" in line for line in kept_person)
    assert metadata["general_replay"]["from_plan"] is True
    # trained towards the base model's distributions (the default target): through our head, which has the KL term
    assert metadata["config"]["general_replay_target"] == "distribution" and metadata["kernels"]["loss"] == "chunked"


def test_a_plan_made_for_other_inputs_is_asked_again(tmp_path: Path, tiny_model_dir: Path) -> None:
    from milton_lora.config import TrainConfig

    planned, prompts = tmp_path / "planned.json", pool(tmp_path, 60)
    asked: list[int] = []

    def replay_for(seed: int, people: int) -> general_replay.GeneralReplay:
        config = TrainConfig(base_model_path=str(tiny_model_dir), general_replay=0.5, seed=seed)
        found = general_replay.general_replay_for(tmp_path / "kept.json", planned, prompts, config, tiny_model_dir,
                                                  person(people, 0), resume=False)  # fmt: skip
        assert found is not None
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(general_replay, "base_model_completer", lambda base: counting(asked))
        first = replay_for(seed=1, people=20)
        batches = len(asked)
        same = replay_for(seed=1, people=20)
        assert same.from_plan and same.conversations == first.conversations and len(asked) == batches
        for seed, people in ((2, 20), (1, 30)):  # another draw, another number wanted: asked again
            batches = len(asked)
            again = replay_for(seed, people)
            assert not again.from_plan and again.conversations != first.conversations and len(asked) > batches


def test_an_answer_cut_at_the_budget_keeps_its_full_sentences(tmp_path: Path) -> None:
    replay = plan_general_replay(1.0, pool(tmp_path, 3), person(0, 3))
    cut = "Rome is the capital. It has 2.8 million people and"
    answer_general_prompts(replay, lambda c: [(cut, False), ("No sentence ends here and", False), ("Yes.", True)], 0)
    assert sorted(c[-1]["content"] for c in replay.conversations) == ["Rome is the capital.", "Yes."]
    assert (replay.shortened, replay.dropped) == (1, 1)
