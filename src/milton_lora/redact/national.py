"""National identity and tax numbers known by their checksum (or, where a country publishes none, their exact
format), validated with `python-stdnum`: Spanish DNI/NIF and NIE, Italian codice fiscale, Finnish HETU, Indian
PAN and Aadhaar, German Steuer-ID, US ITIN and NPI, Canadian SIN, Australian TFN, UK NHS number, the UK
National Insurance number (format only: it has no check digit) and the Singapore NRIC/FIN (its published
check letter; stdnum has no module for it).

Decisions:
- A number whose shape mixes digits and capitals in a way no word or version does (`12345678Z`, `X1234567L`,
  `RSSMRA85T10A562S`, `131052-308T`, `ABCPE1234F`, `AB 12 34 56 C`, `S1234567D`) is an ID_NUMBER wherever it
  stands, when its checksum (or format) holds; a PAN without a cue only when it is a person's (fourth letter
  `P`), the other holder types look too much like product codes.
- An all-digit number (Aadhaar, Steuer-ID, SIN, TFN, NPI, NHS) passes a one-digit checksum one time in ten
  or eleven by chance, so it needs the cue that names its kind (`documents`); there it may stand a few words
  after the cue (`Steuer-ID of the client 65929970489`), where its checksum must hold.
- A US ITIN (`9XX-7X-XXXX`) has the shape of an SSN but an area no SSN has; it is an ID_NUMBER by its shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from stdnum import luhn
from stdnum.au import tfn
from stdnum.ca import sin
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fi import hetu
from stdnum.gb import nhs
from stdnum.in_ import aadhaar, pan
from stdnum.it import codicefiscale
from stdnum.us import itin

from milton_lora.redact.labels import Span

# Where a mixed number ends, on the byte-class copy of the text: three digits then a capital at the end of a token
# (`678Z`, `567L`, `562S`: every shape below ends so). The start is then known from the length of each shape, so
# only tokens that end like an identity number cost any Python work; a pattern that opens with a literal is searched
# for at C speed, and the longer the literal, the fewer the tokens that end like one (`2FA`, `4K`). The two
# shapes that do not end so (`AB 12 34 56 C`, a HETU with a digit last: `131052-3087`) begin a run of digits and
# are looked at by the number finder (`in_numeric_run`).
_MIXED_END = re.compile(rb"000A(?![A0a])")
_SPACED_NINO = b"00.00.00.A"
_NUMERIC_HETU = b"000000.0000"
_MIXED_LENGTHS = (9, 10, 11, 13, 16)
_MIXED = re.compile(
    r"""(?x)
    (?P<dni>\d{8}[A-Z])
    |(?P<nie>[XYZ]\d{7}[A-Z])
    |(?P<nric>[STFG]\d{7}[A-Z])
    |(?P<pan>[A-Z]{3}[ABCFGHJLPT][A-Z]\d{4}[A-Z])
    |(?P<nino>[A-Z]{2}(?:\d{6}|[ ]\d\d[ ]\d\d[ ]\d\d[ ])[A-D])
    |(?P<cf>[A-Z]{6}\d\d[A-Z]\d\d[A-Z]\d{3}[A-Z])
    |(?P<hetu>\d{6}[-+A]\d{3}[0-9A-Y])
    """
)
# A mixed number is a token of its own: no letter, digit, `_` or `-` glued to it (`IMG_20240101X`, `v2-1234567A`).
_GLUED = frozenset("_-/.@")
_NINO_PREFIXES_REFUSED = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})
_NRIC_LETTERS = {"S": "JZIHGFEDCBA", "T": "JZIHGFEDCBA", "F": "XWUTRQPNMLK", "G": "XWUTRQPNMLK"}
_NRIC_WEIGHTS = (2, 7, 6, 5, 4, 3, 2)


def nino_ok(value: str) -> bool:
    """The UK National Insurance number's format rules (HMRC publishes no check digit): prefix letters that are
    never issued, and administrative prefixes, are refused."""
    compact = value.replace(" ", "")
    first, second = compact[0], compact[1]
    return first not in "DFIQUV" and second not in "DFIOQUV" and compact[:2] not in _NINO_PREFIXES_REFUSED


def nric_ok(value: str) -> bool:
    """Singapore NRIC/FIN check letter: weights 2,7,6,5,4,3,2 over the digits, 4 more for the T and G series."""
    total = sum(int(digit) * weight for digit, weight in zip(value[1:8], _NRIC_WEIGHTS, strict=True))
    total += 4 if value[0] in "TG" else 0
    return _NRIC_LETTERS[value[0]][total % 11] == value[8]


def dni_ok(value: str) -> bool:
    """A Spanish DNI/NIF (`12345678Z`, its shape already matched): stdnum's check letter, asked directly. `is_valid`
    would first compact the number and check its format again, nine tenths of its cost."""
    return value.isascii() and dni.calc_check_digit(value[:8]) == value[8]


def nie_ok(value: str) -> bool:
    """A Spanish NIE (`X1234567L`, its shape already matched): stdnum's check letter, asked directly, as `dni_ok`."""
    return value.isascii() and nie.calc_check_digit(value[:8]) == value[8]


def itin_ok(value: str) -> bool:
    """A US ITIN (`9XX-7X-XXXX`): the SSN shape with an area no SSN has (only an area 9XX is asked of stdnum)."""
    return value[:1] == "9" and itin.is_valid(value)


_MIXED_VALID: dict[str, Callable[[str], bool]] = {
    "dni": dni_ok,
    "nie": nie_ok,
    "nric": nric_ok,
    "pan": lambda value: pan.is_valid(value) and value[3] == "P",
    "nino": nino_ok,
    "cf": codicefiscale.is_valid,
    "hetu": hetu.is_valid,
}
# Checksummed all-digit numbers: valid after a cue naming an identity number, even a few words after it.
_NUMERIC_VALID: dict[int, tuple[Callable[[str], bool], ...]] = {
    9: (sin.is_valid, tfn.is_valid, itin_ok),
    10: (nhs.is_valid, lambda digits: luhn.is_valid("80840" + digits)),  # a US NPI: Luhn over 80840 + its digits
    11: (idnr.is_valid,),
    12: (aadhaar.is_valid,),
}


def mixed_numbers(text: str, classes: bytes) -> list[Span]:
    """Identity numbers of a mixed shape anywhere in `text` (`classes` is its byte-class copy)."""
    found: list[Span] = []
    for anchor in _MIXED_END.finditer(classes):
        end = anchor.end()
        for length in _MIXED_LENGTHS:
            start = end - length
            # Most ends lie inside a longer token (a key, a hash): the byte before each start says so at once.
            if start < 0 or (start and classes[start - 1] in b"A0a"):
                continue
            if span := _valid_mixed(text, classes, start, end):
                found.append(span)
                break
    return found


def in_numeric_run(text: str, classes: bytes, start: int) -> Span | None:
    """A spaced NINO whose digits begin at `start` (`AB 12 34 56 C`), or a HETU with a digit last (`131052-3087`)."""
    if classes.startswith(_SPACED_NINO, start):
        return _valid_mixed(text, classes, start - 3, start + len(_SPACED_NINO))
    if classes.startswith(_NUMERIC_HETU, start):
        return _valid_mixed(text, classes, start, start + len(_NUMERIC_HETU))
    return None


def _valid_mixed(text: str, classes: bytes, start: int, end: int) -> Span | None:
    if start < 0 or (start and classes[start - 1] in b"A0a") or classes[end : end + 1] in (b"A", b"0", b"a"):
        return None
    match = _MIXED.fullmatch(text, start, end)
    if match is None or not _stands_alone(text, start, end) or not _MIXED_VALID[match.lastgroup or ""](match[0]):
        return None
    return (start, end, "ID_NUMBER")


def checksum_holds(value: str) -> bool:
    """An all-digit value (spaces and dashes allowed) passes the checksum of a national number of its length."""
    digits = value.replace(" ", "").replace("-", "")
    return digits.isdigit() and any(valid(digits) for valid in _NUMERIC_VALID.get(len(digits), ()))


def _stands_alone(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    return not (
        before.isalnum()
        or before in _GLUED
        or after.isalnum()
        or after in "_-@"
        or (after in "./" and end + 1 < len(text) and text[end + 1].isalnum())
    )
