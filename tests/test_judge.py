"""The head-to-head judge: prompt, verdict parsing, both orders, agreement, the bootstrap interval, the
HTTP client against a scripted judge (a real local server answering deterministically), the loopback rule."""

from __future__ import annotations

import socket

import pytest

from milton_lora.errors import MiltonError
from milton_lora.evaluate.judge import (
    JudgeClient,
    JudgeSpec,
    PairToJudge,
    bootstrap_interval,
    favoured,
    head_to_head,
    is_loopback,
    judge_all,
    judge_messages,
    normalize_url,
    outcome,
    parse_verdict,
)
from scripted_judge import ScriptedJudge

CONVERSATION = [{"role": "user", "content": "I'm flying to Lisbon."}, {"role": "assistant", "content": "Noted."},
                {"role": "user", "content": "Where am I flying to?"}]  # fmt: skip


def pairs() -> list[PairToJudge]:
    """Three prompts: the adapter's answer is longer, shorter, then as long as the opponent's."""
    return [
        PairToJudge("held_out_1", "held_out", CONVERSATION, "You are flying to Lisbon on Friday.", "Lisbon."),
        PairToJudge("reminder", "sanity", [{"role": "user", "content": "Remind me"}], "OK", "Sure, at 9am."),
        PairToJudge("same", "sanity", [{"role": "user", "content": "Hi"}], "Hello!", "Hey yo"),
    ]


def reply(question: list[dict[str, str]], letter: str) -> str:
    return question[-1]["content"].split(f"<reply {letter}>\n")[1].split(f"\n</reply {letter}>")[0]


def client_for(judge: ScriptedJudge, api_key: str | None = None) -> JudgeClient:
    return JudgeClient(JudgeSpec(url=judge.url, model=judge.model, api_key=api_key, timeout_s=30))


@pytest.mark.parametrize(
    ("text", "letter"),
    [("Reply A is correct. [[A]]", "A"), ("[[ B ]]", "B"), ("I said [[A]] first, but finally [[C]]", "C"),
     ("A is better", None), ("[[D]]", None)],
)  # fmt: skip
def test_parse_verdict_takes_the_last_verdict(text: str, letter: str | None) -> None:
    assert parse_verdict(text) == letter


def test_verdicts_map_back_to_sides_and_agree_or_tie() -> None:
    assert favoured("A", adapter_first=True) == "adapter" and favoured("A", adapter_first=False) == "opponent"
    assert favoured("B", adapter_first=False) == "adapter" and favoured("C", True) == "tie"
    assert favoured(None, True) == "unparsed"
    assert outcome(["adapter", "adapter"]) == "win" and outcome(["opponent", "opponent"]) == "loss"
    assert outcome(["adapter", "opponent"]) == "tie" and outcome(["adapter", "tie"]) == "tie"
    assert outcome(["adapter", "unparsed"]) == "tie"


def test_judge_prompt_shows_the_conversation_and_both_replies() -> None:
    messages = judge_messages(CONVERSATION, "first answer", "second answer")
    assert messages[0]["role"] == "system" and "[[A]]" in messages[0]["content"]
    question = messages[1]["content"]
    assert "USER: I'm flying to Lisbon." in question and "ASSISTANT: Noted." in question
    assert question.index("first answer") < question.index("second answer")


def test_a_consistent_judge_gives_wins_losses_and_ties_in_both_orders() -> None:
    with ScriptedJudge("longer") as judge:
        client = client_for(judge)
        client.check()
        judgements = judge_all(client, pairs(), lambda n: None)
        client.close()
    assert [j.outcome for j in judgements] == ["win", "loss", "tie"]
    assert len(judge.questions) == 6
    shown = {(reply(q, "A"), reply(q, "B")) for q in judge.questions}
    assert all({(p.adapter, p.opponent), (p.opponent, p.adapter)} <= shown for p in pairs())  # both orders
    result = head_to_head(judgements, "base", judge.model)
    assert (result.wins, result.ties, result.losses, result.inconsistent, result.unparsed) == (1, 1, 1, 0, 0)
    assert result.win_rate == pytest.approx(0.5) and result.ci_low <= 0.5 <= result.ci_high
    assert result.mean_chars_adapter == pytest.approx((35 + 2 + 6) / 3)
    assert result.mean_chars_opponent == pytest.approx((7 + 13 + 6) / 3)


def test_style_pairs_are_asked_which_reply_sounds_like_the_persons_examples() -> None:
    examples = ["Right — done.\n— M.", "Right — 12 km.\n— M."]
    style_pair = PairToJudge("held_out_2", "style", CONVERSATION, "Right — Lisbon, Friday.\n— M.", "Lisbon.")
    with ScriptedJudge("longer") as judge:
        judgements = judge_all(client_for(judge), [pairs()[0], style_pair], lambda n: None, examples)
    quality = [q for q in judge.questions if "<examples>" not in q[-1]["content"]]
    styled = [q for q in judge.questions if "<examples>" in q[-1]["content"]]
    assert len(quality) == len(styled) == 2 and "sounds more like" in styled[0][0]["content"]
    assert all(f"<example>\n{e}\n</example>" in styled[0][-1]["content"] for e in examples)
    assert "Which reply sounds more like the assistant of the examples?" in styled[0][-1]["content"]
    assert [(j.source, j.outcome) for j in judgements] == [("held_out", "win"), ("style", "win")]


def test_a_position_biased_judge_only_produces_ties() -> None:
    with ScriptedJudge("first") as judge:
        judgements = judge_all(client_for(judge), pairs(), lambda n: None)
    result = head_to_head(judgements, "base", judge.model)
    assert (result.wins, result.ties, result.losses, result.inconsistent) == (0, 3, 0, 3)
    assert all(j.verdicts == ["adapter", "opponent"] for j in judgements)


def test_a_judge_without_verdicts_is_counted_unparsed() -> None:
    with ScriptedJudge("mumble") as judge:
        judgements = judge_all(client_for(judge), pairs(), lambda n: None)
    result = head_to_head(judgements, "base", judge.model)
    assert (result.ties, result.unparsed, result.inconsistent) == (3, 3, 0)
    assert judgements[0].raw == ["Both replies have their merits."] * 2


def test_bootstrap_interval_is_seeded_and_brackets_the_mean() -> None:
    scores = [1.0] * 14 + [0.5] * 3 + [0.0] * 3
    low, high = bootstrap_interval(scores, seed=0)
    assert (low, high) == bootstrap_interval(scores, seed=0)
    assert low < sum(scores) / len(scores) < high and low >= 0.0 and high <= 1.0
    assert bootstrap_interval([1.0] * 5) == (1.0, 1.0)


def test_client_errors_name_the_judge_and_what_to_do() -> None:
    with ScriptedJudge("longer", api_key="sekret") as judge:
        with pytest.raises(MiltonError, match=r"HTTP 401.*--judge-api-key-env"):
            client_for(judge).check()
        client_for(judge, api_key="sekret").check()
        wrong = JudgeClient(JudgeSpec(url=judge.url, model="gpt-9", api_key="sekret"))
        with pytest.raises(MiltonError, match="no model 'gpt-9' there; it serves scripted-judge"):
            wrong.check()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    with pytest.raises(MiltonError, match="start the judge or fix --judge-url"):
        JudgeClient(JudgeSpec(url=closed, model="x", timeout_s=5)).check()


def test_only_loopback_judges_count_as_local() -> None:
    assert is_loopback("http://127.0.0.1:8000/v1") and is_loopback("http://localhost:8000/v1")
    assert is_loopback("http://[::1]:8000/v1")
    assert not is_loopback("http://192.0.2.7:8000/v1") and not is_loopback("https://10.1.2.3/v1")


def test_judge_urls_are_normalized_to_the_openai_base() -> None:
    assert normalize_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000/v1"
    assert normalize_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1"
    with pytest.raises(MiltonError, match="give an http"):
        normalize_url("127.0.0.1:8000")
