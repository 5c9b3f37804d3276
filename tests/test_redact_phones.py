"""Phone numbers without a cue word, judged by the numbering plans of the default regions and by their context
(calculations, ranges, ids, order numbers, timestamps, account numbers in groups of four stay); the bracket
around a number stays in the text."""

from __future__ import annotations

import pytest

from redact_cases import assert_kept, assert_redacted

POSITIVES = [
    ("Dial-in: (469) 219-0364, passcode 5521#", "(469) 219-0364"),
    ("new desk line 1-408-389-5613", "1-408-389-5613"),
    ("from abroad use 001-770-389-2488", "001-770-389-2488"),
    ("Léa 0698940806 pour le devis", "0698940806"),
    ("Kontakt: 0176 98765432 (abends)", "0176 98765432"),
    ("Reception — 020 7946 0321 — open till 8", "020 7946 0321"),
    ("Pedro 612 79 82 35 fontanero", "612 79 82 35"),
    ("Pedro 612798235 fontanero", "612798235"),
    ("office +39 06 6982 1234 ext 12", "+39 06 6982 1234"),
]
KEPT = [
    ("what is 1269 - 225?", "1269 - 225"),
    ("solve 687-7511 + 3 for me", "687-7511"),
    ("read pages 4120-380 tonight", "4120-380"),
    ("Rechne mal 5512 - 431 aus", "5512 - 431"),
    ("Your Amazon order 7048367362 has shipped", "7048367362"),
    ("Bestellnummer 9959460400 ist unterwegs", "9959460400"),
    ("Commande n° 6138249586 expédiée", "6138249586"),
    ("created_at=1712345678 level=info", "1712345678"),
    ("Referenz: 6493 8938 5186 4296 7094", "6493 8938 5186 4296 7094"),
    ('{"client_id": "9622360505"}', "9622360505"),
    ("Kundennr: 07406554528", "07406554528"),
    ("room 347233020", "347233020"),
]


@pytest.mark.parametrize(("text", "value"), POSITIVES)
def test_phone_without_a_cue_is_redacted(text: str, value: str) -> None:
    assert_redacted(text, value, "PHONE")


@pytest.mark.parametrize(("text", "value"), KEPT)
def test_number_that_is_no_phone_is_kept(text: str, value: str) -> None:
    assert_kept(text, value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("the plumber (07700 900123) said Tuesday", "the plumber ([PHONE]) said Tuesday"),
        ("the plumber ((469) 219-0364) said Tuesday", "the plumber ([PHONE]) said Tuesday"),
        ("call (0)30 1234567 please", "call [PHONE] please"),
    ],
)
def test_the_bracket_around_a_phone_number_stays(text: str, expected: str) -> None:
    from redact_cases import ENGINE

    assert ENGINE.redact(text).text == expected
