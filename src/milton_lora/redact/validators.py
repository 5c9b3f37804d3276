"""Validators: what makes a candidate real (Luhn, mod-97, GS1 check digits, numbering plans, entropy,
placeholders, code), so versions, barcodes, ids and placeholders are kept.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import cache

import phonenumbers
from stdnum import ean, luhn
from stdnum.iso7064 import mod_97_10

# stdnum's checksum functions, bound once and asked directly: every caller hands them a candidate its own regex
# already matched (ASCII digits; an IBAN's capitals and digits), so `is_valid`'s cleaning, format checks and
# exception handling would only repeat that, at two to three times the checksum's cost. `test_redact` checks
# that the direct calls give `is_valid`'s verdict on the candidates the corpora produce and on random ones.
_luhn_checksum = luhn.checksum
_mod_97_10_checksum = mod_97_10.checksum
_gs1_check_digit = ean.calc_check_digit

_PLACEHOLDER_SHAPE = re.compile(
    r"\$\{[^}]+\}?|\$[A-Z_][A-Z0-9_]*|\$[a-z_][a-z0-9_]*|<[^>]*>?|\{\{.*|%\(\w+\)[sdr]|%[A-Z_]+%|\*+|•+|\.{3,}|…"
)
_PLACEHOLDER_WORDS = frozenset({
    "none", "null", "nil", "true", "false", "undefined", "redacted", "changeme_placeholder", "your_password",
    "your-password", "yourpassword", "password", "secret", "token", "example", "str", "string", "int", "bool",
    "optional", "required", "hidden", "masked", "removed", "omitted", "empty", "blank", "same", "unknown", "yes", "no",
    "n/a", "tbd", "todo",
})  # fmt: skip
_DASHES = frozenset("-_")
_FILLER = frozenset("x*.-_ ")
_PLACEHOLDER_PREFIXES = ("your_", "your-", "xxx", "example", "placeholder", "dummy", "<", "sample", "fake", "test123")
# A call or subscript whose argument is empty, a name or a quoted string: `input()`, `get(pw)`, `env['PW']`.
_CALL_OR_SUBSCRIPT = re.compile(r"[A-Za-z_][\w.]*(?:\((?:[A-Za-z_\"'].*)?\)|\[[A-Za-z_\"'].*\])")
_DOTTED_REFERENCE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
_SNAKE_CASE = re.compile(r"[a-z_][a-z0-9_]*")
_SECRET_NAME_WORDS = ("pass", "pw", "pwd", "passwd", "password", "secret", "token", "key", "apikey")
_DIGIT = re.compile(r"\d")


def is_placeholder(value: str) -> bool:
    """`xxxx`, `<token>`, `${VAR}`, `%(password)s`, `****`, `your_api_key`, `None`: a stand-in, not a secret."""
    stripped = value.strip("\"'<>{}[]()$%")
    lowered = stripped.lower()
    if lowered in _PLACEHOLDER_WORDS or not stripped:
        return True
    if lowered.startswith(_PLACEHOLDER_PREFIXES) and len(set(lowered) - _FILLER) <= 12:
        return True  # `xxxx-1234`, `your_api_key`, `example-token`; not a random secret that starts with `xxx`
    head = set(stripped[:8])  # more than four characters there (two may be dashes) settle it for almost every value
    if len(head) <= 4 and len(head - _DASHES) <= 2 and len(set(stripped) - _DASHES) <= 2:
        return True  # xxxx, ****, 0000, x-x-x
    return value[:1] in ("$", "<", "{", "%", "*", "•", ".", "…") and _PLACEHOLDER_SHAPE.fullmatch(value) is not None


def looks_like_code(value: str) -> bool:
    """Calls, subscripts, dotted references (`os.environ`, `settings.DB_PASSWORD`) and variables named after
    the secret they hold (`db_password`, `api_token`) are code, not secrets."""
    if ("(" in value or "[" in value) and _CALL_OR_SUBSCRIPT.fullmatch(value):
        return True
    if "." in value and _DOTTED_REFERENCE.fullmatch(value):
        return True
    if not _SNAKE_CASE.fullmatch(value) or not any(word in value for word in _SECRET_NAME_WORDS):
        return False
    return "_" in value or value in _SECRET_NAME_WORDS


_X_LOG2_X = [0.0] + [count * math.log2(count) for count in range(1, 257)]


def shannon_entropy(value: str) -> float:
    """Bits per character: log2(n) - sum(c * log2(c)) / n over the character counts c."""
    total = len(value)
    counts = Counter(value).values()
    x_log2_x = _X_LOG2_X.__getitem__ if total < len(_X_LOG2_X) else lambda count: count * math.log2(count)
    return math.log2(total) - sum(map(x_log2_x, counts)) / total


def character_classes(value: str) -> int:
    """How many of lower case, upper case and digits `value` holds."""
    return (value.lower() != value) + (value.upper() != value) + bool(_DIGIT.search(value))


def high_entropy(value: str) -> bool:
    """Long, mixed and varied enough to be a generated secret rather than a word or a name."""
    return len(value) >= 16 and character_classes(value) >= 2 and shannon_entropy(value) >= 3.2


_KEY_PREFIX = re.compile(r"^(?:sk-(?:ant-|proj-|svcacct-|admin-)?|[a-z]+_(?:pat_|live_|test_|v1_)?|[a-z]+-)")


def looks_random(key: str) -> bool:
    """A provider key's body after its prefix varies enough not to be a placeholder (`sk-xxxx...`)."""
    body = _KEY_PREFIX.sub("", key, count=1)
    return len(set(body)) >= 8 and not is_placeholder(body)


def iban_checksum_ok(iban: str) -> bool:
    """The IBAN's mod-97 check (ISO 7064), the country code and check digits moved to the end (`iban`: capitals
    and digits, as the IBAN pattern matches them; mod_97_10.is_valid's verdict, without its exception handling)."""
    return _mod_97_10_checksum(iban[4:] + iban[:4]) == 1


def luhn_ok(digits: str) -> bool:
    """The Luhn check of `digits` (digits, at least one): luhn.is_valid's verdict without its wrapping."""
    try:
        return _luhn_checksum(digits) == 0
    except ValueError:  # a digit of another script, which `\d` matches just past a run of ASCII ones
        return False


def gtin_ok(digits: str) -> bool:
    """The GS1 check digit of an EAN-13, UPC-A or ISBN-13 (`digits`: digits only, as every caller has them, so
    stdnum's check digit is asked for directly, without its cleaning, at a third of `ean.is_valid`'s cost)."""
    return _gs1_check_digit(digits[:-1]) == digits[-1]


def card_prefix_ok(digits: str) -> bool:
    """The issuer ranges and lengths of the card networks (13 digits only for Visa)."""
    if digits[0] not in "23456":
        return False  # no network issues cards from 0, 1, 7, 8 or 9 (ISBNs start 978)
    length = len(digits)
    if digits[0] == "4":
        return length in (13, 16, 19)
    two, four = int(digits[:2]), int(digits[:4])
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return length == 16
    if two in (34, 37):
        return length == 15
    if digits.startswith(("6011", "65")) or 644 <= int(digits[:3]) <= 649 or 622126 <= int(digits[:6]) <= 622925:
        return 16 <= length <= 19
    if two == 35:
        return 16 <= length <= 19
    if 300 <= int(digits[:3]) <= 305 or two in (36, 38, 39):
        return 14 <= length <= 19
    if two == 62 or two in (50, *range(56, 70)):
        return 14 <= length <= 19
    return False


def card_grouping_ok(raw: str) -> bool:
    """Cards are written as one run or in groups split by one kind of separator; 3-7-7 order numbers are not."""
    if " " in raw:
        if "-" in raw:
            return False
        groups = raw.split(" ")
    elif "-" in raw:
        groups = raw.split("-")
    else:
        return True
    lengths = list(map(len, groups))
    return lengths[0] == 4 and min(lengths) >= 1 and max(lengths) <= 6


def ssn_ok(area: str, group: str, serial: str) -> bool:
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"  # 0-255 without leading zeros
_VALID_IPV4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")


def valid_ipv4(address: str) -> bool:
    return _VALID_IPV4.fullmatch(address) is not None


def kept_ipv4(address: str) -> bool:
    """Loopback (all of 127.0.0.0/8), unspecified, broadcast and netmasks identify no one."""
    return address.startswith(("127.", "0.", "255.")) or address == "0.0.0.0"


@cache
def national_number_pattern(regions: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern that fully matches the national numbers valid in any of `regions`.

    It is the check `phonenumbers.is_valid_number` makes from the library's own metadata (a possible
    length, then the region's national number pattern, with or without the national prefix), compiled
    once into one regex because a full parse per candidate would dominate the export's time.
    """
    branches = []
    for region in regions:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        general = metadata.general_desc if metadata else None
        if general is None or not general.national_number_pattern or not general.possible_length:
            continue
        lengths = "|".join(rf"\d{{{length}}}" for length in sorted(general.possible_length))
        prefix = f"(?:{re.escape(metadata.national_prefix)})?" if metadata.national_prefix else ""
        branches.append(rf"{prefix}(?=(?:{lengths})\Z)(?:{general.national_number_pattern})")
    return re.compile("|".join(f"(?:{branch})" for branch in branches) or "(?!)")


@cache
def unprefixed_mobile_pattern(regions: tuple[str, ...]) -> re.Pattern[str]:
    """The mobile numbers of those of `regions` that dial no trunk prefix and whose mobiles all have nine digits
    (Spain's `612345678`, Poland's): a bare run of nine digits is taken for a phone number only in that range."""
    branches = []
    for region in regions:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        mobile = metadata.mobile if metadata else None
        if metadata is None or metadata.national_prefix or mobile is None or list(mobile.possible_length) != [9]:
            continue  # Italy's mobiles are mostly ten digits: its nine-digit range would take room and order numbers
        branches.append(rf"(?=\d{{9}}\Z)(?:{mobile.national_number_pattern})")
    return re.compile("|".join(f"(?:{branch})" for branch in branches) or "(?!)")


def possible_international(digits: str) -> bool:
    """`digits` (after a `+`) start with a country code and have a length that country's numbers can have.

    A number written with `+` is a phone number by its form; this is `phonenumbers.is_possible_number`'s
    length check, which also accepts numbers newer than the library's numbering plans.
    """
    for size in (1, 2, 3):
        lengths = _possible_lengths(digits[:size])
        if lengths:
            return len(digits) - size in lengths
    return False


def valid_international(digits: str) -> bool:
    """`digits` (after `00`) start with a country code and a number valid in one of its regions."""
    for size in (1, 2, 3):
        national = _country_national_pattern(digits[:size])
        if national is not None:
            return national.fullmatch(digits, size) is not None
    return False


@cache
def _possible_lengths(country_code: str) -> frozenset[int]:
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(country_code)) if country_code.isdigit() else None
    lengths: set[int] = set()
    for region in regions or ():
        metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(int(country_code), region)
        if metadata is not None and metadata.general_desc is not None:
            lengths.update(metadata.general_desc.possible_length or ())
    return frozenset(lengths)


@cache
def _country_national_pattern(country_code: str) -> re.Pattern[str] | None:
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(country_code)) if country_code.isdigit() else None
    if not regions:
        return None
    return national_number_pattern(tuple(region for region in regions if region != "001"))
