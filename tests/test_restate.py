"""`export --restate-facts`: which sentences are the person's stated facts (the rules), and the export augmented
with their restatements: train split only, marked, with lineage, counted in metadata.json, gone with a forget."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from milton_lora.chat.conversations import read_conversations
from milton_lora.demo.samples import write_cpu_config
from milton_lora.export import split_of
from milton_lora.lineage import ExportLineage, is_restated
from milton_lora.restate import restate_export, statements_in
from milton_lora.restate.augment import ASK, restates
from milton_lora.settings import Settings

SHIPPED = Path(__file__).resolve().parents[1] / "training" / "configs"

STATED = [  # (a user turn, the rule, the words a restatement must carry)
    ("Plan dinner for Saturday. I'm vegetarian, so no meat please.", "identity", {"vegetarian"}),
    ("My sister Ana lives in Porto. Find me a flight there in May.", "relation", {"sister", "Ana", "Porto"}),
    ("I prefer metric units. How far is a marathon?", "preference", {"metric", "units"}),
    ("Call me Sam. What's the weather like?", "name", {"Sam"}),
    ("By the way, my dog is called Biscuit.", "named", {"dog", "Biscuit"}),
    ("I'm allergic to peanuts, so check the menu.", "identity", {"allergic", "peanuts"}),
    ("Remember that my favourite tea is oolong.", "preference", {"tea", "oolong"}),
    ("I live in Leeds. Any museums nearby?", "place", {"Leeds"}),
    ("I work as a nurse; night shifts are hard.", "place", {"nurse"}),
    ("I’m from Lisbon.", "identity", {"Lisbon"}),
    ("I always sit by the window.", "preference", {"window"}),
    ("I have two kids.", "have", {"two", "kids"}),
]
NOT_STATED = [
    "Am I vegetarian?",  # a question
    "Do you think I prefer tea or coffee?",
    "If I were vegetarian, what would I cook?",  # hypotheticals
    "Imagine I live in Paris: what would rent cost?",
    "I would prefer the later train.",
    'She wrote "I\'m vegetarian" on the form.',  # quoted text
    "> I live in Leeds",  # a quoted e-mail line
    "```\nI live in Leeds\n```",  # code
    '<attachment name="cv.txt">I work as a nurse.</attachment>',
    "Ana is vegetarian.",  # someone else's facts
    "My colleague prefers tea.",
    "My sister said she lives in Porto.",
    "I'm not vegetarian.",  # negations
    "I don't eat meat.",
    "I never sit on the aisle.",
    "I'm tired today.",  # passing states
    "My partner Noor is away this week.",
    "I'm a bit late.",
    "I'm going to the shop.",
    "I love it.",  # nothing said
    "I like that idea.",
    "Call me back at 5.",
    "My email is [EMAIL].",  # redacted values
    "I work at [CUSTOM].",
]


@pytest.mark.parametrize(("turn", "rule", "keys"), STATED)
def test_the_rules_find_what_the_person_states_about_themselves(turn: str, rule: str, keys: set[str]) -> None:
    [found] = statements_in(turn)
    assert (found.rule, set(found.keys)) == (rule, keys)


@pytest.mark.parametrize("turn", NOT_STATED)
def test_the_rules_leave_questions_hypotheticals_quotes_and_other_peoples_facts(turn: str) -> None:
    assert statements_in(turn) == []


def test_a_restatement_must_carry_the_fact_to_the_person() -> None:
    [sister] = statements_in("My sister Ana lives in Porto.")
    assert restates("Your sister Ana lives in Porto.", sister)
    assert not restates("Your sister lives in Porto.", sister)  # a key word missing
    assert not restates("My sister Ana lives in Porto.", sister)  # the assistant's own sister
    assert not restates("Ana lives in Porto.", sister)  # not said to the person
    assert not restates("Your sister Ana lives in Porto. " + "It is lovely. " * 20, sister)  # not short


def said_back(conversations: list[list[dict[str, str]]], max_new_tokens: int) -> list[str]:
    """A scripted base model: no usable question (the rule's is used), and each statement said back to the person
    (but "I'm allergic to peanuts" said back without its key word, so it is dropped)."""
    replies = []
    for conversation in conversations:
        instruction, statement = conversation[-1]["content"].split("\n", 1)
        if instruction == ASK:
            replies.append("Sure!")
            continue
        swapped = re.sub(r"(?i)\bcall me\b", "you go by", statement)
        swapped = re.sub(r"\bI'm\b", "You're", re.sub(r"\b[Mm]y\b", "your", re.sub(r"\bI\b", "you", swapped)))
        replies.append(swapped.replace("peanuts", "nuts"))
    return replies


def history(path: Path) -> tuple[Path, dict[str, str]]:
    """An OpenAI-style history: each stated fact in its own conversation, on the train side of the split but the
    last, which is on the test side; then some chats that state nothing."""
    ids: dict[str, str] = {}
    candidates = (f"c{n}" for n in range(1000))
    for index, (turn, _, _) in enumerate(STATED):
        want = "test" if index == len(STATED) - 1 else "train"
        ids[turn] = next(c for c in candidates if split_of(f"openai:{c}") == want)
    lines = [{"id": key, "messages": [{"role": "user", "content": turn}, {"role": "assistant", "content": "Noted."}]}
             for turn, key in ids.items()]  # fmt: skip
    for n, question in enumerate(NOT_STATED[:8]):
        turns = [{"role": "user", "content": f"{question} ({n})"}, {"role": "assistant", "content": "ok"}]
        lines.append({"id": f"plain{n}", "messages": turns})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path, ids


def test_restatements_go_to_train_only_marked_with_lineage_and_a_forget_removes_them(home: Path, cli) -> None:
    settings = Settings.from_env(home)
    source, ids = history(home.parent / "history.jsonl")
    assert cli("memory", "import", str(source)).exit_code == 0
    assert cli("export").exit_code == 0
    test_before = settings.export_test_path.read_bytes()

    summary = restate_export(settings.export_dir, "scripted", said_back, max_statements=64)
    metadata = json.loads((settings.export_dir / "metadata.json").read_text())
    lines = [json.loads(line) for line in settings.export_train_path.read_text().splitlines()]
    restated = [line for line in lines if is_restated(line)]
    # 11 statements on the train side; the peanuts one dropped; the test side's (two kids) never read.
    assert (summary.statements_found, summary.written, summary.dropped) == (11, 10, 1)
    assert summary.questions_from_rule == 11
    assert metadata["restated"] == summary.as_dict() and metadata["restated"]["model"] == "scripted"
    assert metadata["restated"]["rules_version"] == 1
    assert metadata["train_conversations"] == len(lines) - 10
    assert len(restated) == 10 and settings.export_test_path.read_bytes() == test_before
    assert not any("kids" in json.dumps(line) for line in restated)
    sister = next(line for line in restated if "Porto" in line["messages"][1]["content"])
    assert sister["messages"] == [
        {"role": "user", "content": "What do you know about my sister?"},
        {"role": "assistant", "content": "your sister Ana lives in Porto."},
    ]
    lineage = ExportLineage.model_validate(metadata["lineage"])
    assert len(lineage.train) == len(lines)
    assert len(read_conversations(settings.export_train_path, restated=False)) == len(lines) - 10

    # Restating again replaces the earlier lines instead of adding to them.
    assert restate_export(settings.export_dir, "scripted", said_back, max_statements=3).over_cap == 8
    assert sum(is_restated(json.loads(x)) for x in settings.export_train_path.read_text().splitlines()) == 3
    restate_export(settings.export_dir, "scripted", said_back, max_statements=64)

    sister_chat = ids["My sister Ana lives in Porto. Find me a flight there in May."]
    forgot = cli("memory", "forget", f"openai:{sister_chat}", "--yes")
    assert forgot.exit_code == 0, forgot.stderr
    after = settings.export_train_path.read_text()
    assert "Porto" not in after and "Ana" not in after
    metadata = json.loads((settings.export_dir / "metadata.json").read_text())
    assert metadata["restated"]["written"] == 9
    assert metadata["train_conversations"] == len(after.splitlines()) - 9
    assert len(metadata["lineage"]["train"]) == len(after.splitlines())


def test_export_restate_facts_runs_the_base_model_and_counts_what_it_kept(
    home: Path, cli, tiny_model_dir: Path
) -> None:
    """The real path on the tiny random model: it finds the statements, generates, and (its words being noise)
    keeps none of them; every count and the model are recorded, and the held-out split is untouched."""
    settings = Settings.from_env(home)
    source, _ = history(home.parent / "history.jsonl")
    assert cli("memory", "import", str(source)).exit_code == 0
    write_cpu_config(settings.configs_dir / "lora_light.yaml", tiny_model_dir, SHIPPED / "lora_light.yaml")
    done = cli("export", "--restate-facts", "--config", "lora_light.yaml")
    assert done.exit_code == 0, done.stderr
    assert "restated: statements found" in done.stdout
    metadata = json.loads((settings.export_dir / "metadata.json").read_text())
    restated = metadata["restated"]
    assert restated["model"] == str(tiny_model_dir) and restated["statements_found"] == 11
    assert restated["written"] + restated["dropped"] == 11
    lines = settings.export_train_path.read_text().splitlines()
    assert len(lines) == len(metadata["lineage"]["train"]) == metadata["train_conversations"] + restated["written"]
    assert not any(is_restated(json.loads(line)) for line in settings.export_test_path.read_text().splitlines())

    # export.yaml's restate_facts does the same without the flag; a plain export has no restatements.
    (home / "export.yaml").write_text("restate_facts: true\nrestate_max_facts: 2\n")
    assert cli("export", "--config", "lora_light.yaml").exit_code == 0
    again = json.loads((settings.export_dir / "metadata.json").read_text())["restated"]
    assert (again["statements_found"], again["over_cap"]) == (11, 9)
    (home / "export.yaml").unlink()
    assert cli("export").exit_code == 0
    assert json.loads((settings.export_dir / "metadata.json").read_text())["restated"] == {}


def test_a_missing_base_model_fails_before_the_export_is_replaced(home: Path, cli, tmp_path: Path) -> None:
    settings = Settings.from_env(home)
    source, _ = history(home.parent / "history.jsonl")
    assert cli("memory", "import", str(source)).exit_code == 0
    assert cli("export").exit_code == 0
    before = settings.export_train_path.read_bytes()
    settings.configs_dir.mkdir(parents=True, exist_ok=True)
    (settings.configs_dir / "nowhere.yaml").write_text(f"base_model_path: {tmp_path / 'no-model'}\n")
    failed = cli("export", "--restate-facts", "--config", "nowhere.yaml")
    assert failed.exit_code != 0
    assert "no base model there" in failed.stderr and "Traceback" not in failed.stderr
    assert settings.export_train_path.read_bytes() == before


@pytest.mark.slow
def test_smollm2_restates_stated_facts_in_the_second_person(tmp_path: Path, smollm2_dir: Path) -> None:
    """The shipped base model, for real: most plain statements come back said to the person."""
    from milton_lora.restate import load_generator
    from milton_lora.restate.augment import RestateSummary, restated_lines

    statements = [statements_in(turn)[0] for turn, _, _ in STATED[:6]]
    summary = RestateSummary(model=str(smollm2_dir))
    lines = restated_lines(statements, load_generator(smollm2_dir), summary)
    kept = [json.loads(line) for line in lines if line is not None]
    assert len(kept) >= 4, lines
    for line in kept:
        assert re.search(r"\byou", line["messages"][1]["content"], re.IGNORECASE)
