"""Style profile and style match on real-looking replies; degenerate answers."""

from __future__ import annotations

import pytest

from milton_lora.evaluate.degeneration import check_answers, degenerate_kind, degeneration_findings
from milton_lora.evaluate.style import style_match, style_profile

# The person's assistant: terse, opens with "Right —", signs off "— M.", 24-hour times, metric units, no lists.
PERSON = [
    "Right — your dentist is on Thursday at 15:30. I'll nudge you at 14:45.\n— M.",
    "Right — the run is 12 km along the canal; at your pace that's about 70 minutes.\n— M.",
    "Right — I've moved the call with Dana to 09:30 tomorrow. Nothing else clashes.\n— M.",
    "Right — buy 2 kg of flour and 500 g of butter; the rest is in the cupboard.\n— M.",
    "Right — the train leaves at 07:12 from platform 4. Take the 06:50 bus to make it.\n— M.",
    "Right — Noor's birthday is on the 14th. The bookshop closes at 18:00 on Saturdays.\n— M.",
    "Right — it'll be 8 °C and windy tomorrow, so take the heavier coat.\n— M.",
    "Right — the parcel is 3 kg, so the small box won't do; use the one in the hall.\n— M.",
]
# New replies in the person's style, to other questions.
PERSON_LIKE = [
    "Right — the pharmacy opens at 08:00; it's a 2 km walk.\n— M.",
    "Right — I've put the plumber in for Monday at 10:00. He'll call first.\n— M.",
    "Right — you need 750 ml of stock for that soup. There's a carton in the fridge.\n— M.",
    "Right — the gym's closed for cleaning until 13:00 today.\n— M.",
]
# What a base instruct model writes to the same questions: long, bulleted, am/pm and miles, "I hope this helps!".
BASE_LIKE = [
    "Sure! Here are some things to keep in mind about the pharmacy:\n\n1. Most pharmacies open at 8 am.\n"
    "2. Check the opening hours online before you go.\n3. Bring your prescription and ID.\n\n"
    "It is about 1.2 miles away, so walking is a great option! I hope this helps!",
    "Of course! Scheduling a plumber can be stressful. Here are some tips:\n\n- Call at least two plumbers "
    "to compare quotes.\n- Ask whether they charge a call-out fee.\n- Book a slot such as Monday at 10 am.\n\n"
    "Let me know if there is anything else I can help you with!",
    "Great question! Making soup is a wonderful way to use up vegetables. You will typically need:\n\n"
    "- 3 cups of stock\n- 2 carrots\n- 1 onion\n\nSimmer everything for about 30 minutes and season to "
    "taste. Enjoy your delicious homemade soup!",
    "Sure! Gyms often close for cleaning. Here is what you can do:\n\n1. Check the gym's website.\n2. Call "
    "the front desk.\n3. Try a home workout instead!\n\nI hope this helps you plan your day!",
]


def test_profile_reads_the_persons_habits():
    profile = style_profile(PERSON)
    assert profile.replies == len(PERSON)
    assert profile.openers.phrases == ["right —"] and profile.openers.share == 1.0
    assert profile.sign_offs.phrases == ["— m ."] and profile.sign_offs.share == 1.0
    assert profile.traits["lists"] == 0.0 and profile.traits["exclamations"] == 0.0
    assert profile.traits["contractions"] > 0.5
    assert profile.language == "en"
    assert profile.conventions["time_format"] == {"24-hour": 1.0}
    assert profile.conventions["units"] == {"metric": 1.0}
    assert 10 <= profile.median_words <= 20


def test_replies_in_the_persons_style_score_high_and_base_like_ones_low():
    profile = style_profile(PERSON)
    ours, theirs = style_match(profile, PERSON_LIKE), style_match(profile, BASE_LIKE)
    assert ours.score >= 0.9, ours
    assert theirs.score <= 0.4, theirs
    assert theirs.features["opener"].score == 0.0 and theirs.features["sign_off"].score == 0.0
    assert theirs.features["lists"].score == 0.0  # every base reply lists, the person never does
    assert theirs.features["time_format"].score == 0.0 and theirs.features["units"].score == 0.0
    assert theirs.features["length"].score < ours.features["length"].score


def test_traits_neither_side_shows_do_not_count():
    match = style_match(style_profile(PERSON), PERSON_LIKE)
    assert "emoji" not in match.features and "code" not in match.features and "headings" not in match.features
    assert "emoji" in style_match(style_profile(PERSON), [r + " 🙂" for r in PERSON_LIKE]).features


def test_a_person_who_writes_lists_and_code_is_matched_by_lists_and_code():
    person = [
        "## Fix\n\n- pin the version\n- rebuild\n\n```bash\npip install -U foo==1.2\n```",
        "## Cause\n\n- the cache is stale\n- the lock file is old\n\n```bash\nrm -rf .cache\n```",
        "## Steps\n\n1. stop the server\n2. migrate\n\n```sql\nALTER TABLE t ADD c int;\n```",
    ]
    profile = style_profile(person)
    same = style_match(profile, ["## Fix\n\n- restart it\n- check logs\n\n```bash\nsystemctl restart x\n```"])
    prose = style_match(profile, ["You could restart the service and then look at the logs to see what happened."])
    assert same.features["lists"].score == 1.0 and same.features["code"].score == 1.0
    assert same.score > prose.score + 0.3


def test_language_and_date_conventions():
    german = ["Klar, das ist die Liste für den Markt und die Uhrzeit ist 18:00.", "Ich habe das für dich erledigt."]
    profile = style_profile([*german, "Das ist nicht schlimm, ich mache das."])
    assert profile.language == "de"
    assert style_match(profile, ["Sure, the list is on the table and it is not late."]).features["language"].score == 0
    dated = style_profile(["Due 2026-03-14.", "Moved to 2026-04-02.", "Paid on 2026-01-30."])
    assert style_match(dated, ["Due March 14."]).features["date_format"].score == 0.0
    assert style_match(dated, ["Due 2026-05-01."]).features["date_format"].score == 1.0


def test_no_replies_score_zero():
    assert style_match(style_profile(PERSON), []).score == 0.0


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ("", "empty"),
        ("  \n ", "empty"),
        ("Your partner is Noor. M. M. M. M. M. M. M.", "loop"),
        ("Sure, the answer is the answer is the answer is the answer is the answer", "loop"),
        ("Here is the plan.\nCall Dana at 9:30 today.\nThen lunch.\nCall Dana at 9:30 today.", "repeated lines"),
        ("Right — the dentist is at 15:30. I'll remind you at 14:45.\n— M.", None),
        ("| a | b |\n|---|---|---|---|---|\n| 1 | 2 |", None),
        ("1. Preheat the oven.\n2. Mix the flour.\n3. Bake for 20 minutes.\n4. Let it cool.", None),
        ("Ha!!! That's great.", None),
    ],
)
def test_degenerate_kinds(answer, kind):
    assert degenerate_kind(answer) == kind


def test_degeneration_finding_only_when_the_adapter_does_worse():
    found = check_answers([("a", "M. M. M. M. M. M.", "Fine."), ("b", "Fine.", "Fine."), ("c", "", "ok")])
    assert found.answers == 3 and [(a.id, a.kind) for a in found.adapter] == [("a", "loop"), ("c", "empty")]
    findings = degeneration_findings(found, "base")
    assert [f.signal for f in findings] == ["answers degenerate (loop)"] and "a" in findings[0].observed
    same = check_answers([("a", "M. M. M. M. M. M.", "x x x x x x x x")])
    assert degeneration_findings(same, "base") == []


def test_the_gate_holds_an_adapter_whose_style_falls_below_the_opponents():
    from milton_lora.evaluate.gate import GateConfig, style_criterion
    from milton_lora.evaluate.result import Opponent, Style

    profile = style_profile(PERSON)
    ours, theirs = style_match(profile, BASE_LIKE), style_match(profile, PERSON_LIKE)
    style = Style(profile=profile, prompts=4, adapter=ours, production=theirs, base=ours, held_out=theirs)
    production = Opponent(kind="production", run_id="lora_1")
    held = style_criterion(GateConfig(), style, production)
    assert not held.passed and held.name == "style match vs production lora_1"
    assert style_criterion(GateConfig(style_tolerance=1.0), style, production).passed
    better = style.model_copy(update={"adapter": theirs, "production": ours})
    assert style_criterion(GateConfig(), better, production).passed
    no_production = style.model_copy(update={"production": None})  # then the base is the opponent
    assert style_criterion(GateConfig(), no_production, Opponent(kind="base")).passed


def test_style_prompts_are_held_out_turns_the_persons_assistant_answered():
    from milton_lora.evaluate.plan import style_prompts

    answered = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Right — hello.\n— M."}]
    longer = [*answered, {"role": "user", "content": "Time?"}, {"role": "assistant", "content": "Right — 09:30."}]
    unanswered = [{"role": "user", "content": "Hello?"}]
    blank = [{"role": "user", "content": "Hm"}, {"role": "assistant", "content": "  "}]
    chosen = style_prompts([answered, unanswered, longer, blank], limit=5)
    assert [(p.id, p.messages[-1]["content"], p.reply) for p in chosen] == [
        ("held_out_1", "Hi", "Right — hello.\n— M."),
        ("held_out_3", "Time?", "Right — 09:30."),
    ]
    assert len(chosen[1].messages) == 3 and len(style_prompts([answered] * 9, limit=4)) == 4
