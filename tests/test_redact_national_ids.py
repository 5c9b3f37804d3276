"""National identity and tax numbers, validated with python-stdnum: the mixed shapes (DNI/NIF, NIE, codice
fiscale, HETU, PAN, NINO, NRIC/FIN) wherever they stand when their checksum or format holds, the all-digit
ones (Aadhaar, Steuer-ID, SIN, TFN, NPI, NHS) after a cue naming them, the ITIN by its SSN shape in area 9XX;
and the look-alikes whose checksum fails, or that lack their cue."""

from __future__ import annotations

import pytest
from stdnum.es import dni, nie
from stdnum.fi import hetu
from stdnum.it import codicefiscale

from milton_lora.redact.national import checksum_holds, nino_ok, nric_ok
from redact_cases import ENGINE, assert_kept, assert_redacted

POSITIVES = [
    ("the gestoría needs my DNI 12345678Z by Friday", "12345678Z"),
    ("NIE X1234567L, expira en marzo", "X1234567L"),
    ("ho ricontrollato: RSSMRA85T10A562S è giusto?", "RSSMRA85T10A562S"),
    ("Kela asked for 131052-308T again", "131052-308T"),
    ("my PAN ABCPE1234F is linked now", "ABCPE1234F"),
    ("HMRC letter quotes AB123456C", "AB123456C"),
    ("the payslip shows JG 12 34 56 C", "JG 12 34 56 C"),
    ("MOM says S1234567D is on the pass", "S1234567D"),
    ("aadhaar no. 2345 6789 0124 for the KYC", "2345 6789 0124"),
    ("Steuer-ID meiner Frau: 65929970489", "65929970489"),
    ("the Steuer-ID of my wife 65929970489", "65929970489"),
    ("SIN 046 454 286 for the T4", "046 454 286"),
    ("TFN for Sam: 123 456 782", "123 456 782"),
    ("NPI 1234567893 on the claim", "1234567893"),
    ("ITIN 912-70-1234 on the W-7", "912-70-1234"),
]
KEPT = [
    ("batch 12345678A failed the QA", "12345678A"),  # a DNI shape whose check letter is wrong
    ("model X1234567A of the pump", "X1234567A"),
    ("ticket RSSMRA85T10A562X is closed", "RSSMRA85T10A562X"),
    ("the PAN ABCDE1234F is a company's", "ABCDE1234F"),  # cue-less, and no person's (fourth letter not P)
    ("part 131052-308A in stock", "131052-308A"),
    ("IMG_12345678Z.jpg", "12345678Z"),
    ("v2-X1234567L build", "X1234567L"),
]


@pytest.mark.parametrize(("text", "value"), POSITIVES)
def test_national_id_is_redacted(text: str, value: str) -> None:
    assert_redacted(text, value, "ID_NUMBER")


@pytest.mark.parametrize(("text", "value"), KEPT)
def test_look_alike_is_kept(text: str, value: str) -> None:
    assert_kept(text, value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("the Steuer-ID on that letter 65929970488", "65929970488"),
        ("the Aadhaar of my mother 2345 6789 0125", "2345 6789 0125"),
    ],
)
def test_a_few_words_after_its_cue_only_the_checksum_makes_an_id_number(text: str, value: str) -> None:
    start = text.index(value)
    assert all(f.label != "ID_NUMBER" for f in ENGINE.find(text) if f.start <= start < f.end)


def test_the_checksums_are_stdnum_s() -> None:
    assert dni.is_valid("12345678Z") and not dni.is_valid("12345678A")
    assert nie.is_valid("X1234567L") and codicefiscale.is_valid("RSSMRA85T10A562S") and hetu.is_valid("131052-308T")
    assert checksum_holds("65929970489") and not checksum_holds("65929970488")
    assert checksum_holds("2345 6789 0124") and not checksum_holds("2345 6789 0125")


def test_formats_stdnum_lacks() -> None:
    assert nric_ok("S1234567D") and not nric_ok("S1234567E")
    assert nino_ok("AB123456C") and not nino_ok("GB123456A") and not nino_ok("DA123456A")
