"""Validators: what makes a candidate real (Luhn, mod-97, numbering plans, entropy, version and
placeholder context), so versions, dates, ids and placeholders are kept.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import cache

import phonenumbers

from milton_lora.redact.patterns import (
    _DIGIT,
    _DOTTED_PHONE,
    _IBAN_LETTER_VALUES,
    _IP_CUE,
    _PRODUCT_NAME,
    _TOKEN_PATH_HOST,
    _URL_SECRET_PARAMS,
    _VERSION_CUE,
    _backwards,
)

_PLACEHOLDER_SHAPE = re.compile(r"\$\{[^}]+\}|\$[A-Z_][A-Z0-9_]*|\$[a-z_][a-z0-9_]*|<[^>]*>?|\{\{.*")
_PLACEHOLDER_WORDS = frozenset({
    "none", "null", "nil", "true", "false", "undefined", "redacted", "changeme_placeholder", "your_password",
    "your-password", "yourpassword", "password", "secret", "token", "example", "str", "string", "int", "bool",
    "optional", "required",
})  # fmt: skip
_DASHES = frozenset("-_")
_PLACEHOLDER_PREFIXES = ("your_", "your-", "xxx", "example", "placeholder", "dummy", "<")
_CALL_OR_SUBSCRIPT = re.compile(r"[A-Za-z_][\w.]*(?:\(.*\)|\[.*\])")
_DOTTED_REFERENCE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
_SNAKE_CASE = re.compile(r"[a-z_][a-z0-9_]*")


def _is_placeholder(value: str) -> bool:
    stripped = value.strip("\"'<>{}[]()$%")
    lowered = stripped.lower()
    if lowered in _PLACEHOLDER_WORDS or lowered.startswith(_PLACEHOLDER_PREFIXES):
        return True
    if len(set(stripped[:8]) - _DASHES) <= 2 and len(set(stripped) - _DASHES) <= 2:
        return True  # xxxx, ****, 0000, x-x-x (the first 8 characters settle it for almost every value)
    if value[:1] in ("$", "<", "{") and _PLACEHOLDER_SHAPE.fullmatch(value):
        return True  # ${VAR}, $VAR, <token>, {{ secret }}
    return value.startswith("%") and value.endswith("%")


def _looks_like_code(value: str) -> bool:
    # Calls, subscripts, dotted references (os.environ, settings.DB_PASSWORD) and variables named after the
    # secret they hold (db_password, api_token) are code, not secrets.
    if ("(" in value or "[" in value) and _CALL_OR_SUBSCRIPT.fullmatch(value):
        return True
    if "." in value and _DOTTED_REFERENCE.fullmatch(value):
        return True
    return bool(_SNAKE_CASE.fullmatch(value)) and any(w in value for w in ("pass", "pw", "secret", "token", "key"))


def _shannon_entropy(value: str) -> float:
    """Bits per character: log2(n) - sum(c * log2(c)) / n over the character counts c."""
    total = len(value)
    counts = Counter(value).values()
    x_log2_x = _X_LOG2_X.__getitem__ if total < len(_X_LOG2_X) else lambda count: count * math.log2(count)
    return math.log2(total) - sum(map(x_log2_x, counts)) / total


_X_LOG2_X = [0.0] + [count * math.log2(count) for count in range(1, 257)]


def _high_entropy(value: str) -> bool:
    if len(value) < 16:
        return False
    classes = (value.lower() != value) + (value.upper() != value) + bool(_DIGIT.search(value))
    return classes >= 2 and _shannon_entropy(value) >= 3.2


_KEY_PREFIX = re.compile(r"^(?:sk-(?:ant-|proj-|svcacct-|admin-)?|[a-z]+_(?:pat_|live_|test_)?|glpat-|xox[a-z]-)")


def _looks_random(key: str) -> bool:
    body = _KEY_PREFIX.sub("", key, count=1)
    return len(set(body)) >= 8 and not _is_placeholder(body)


_QUERY_START = re.compile(r"[?#]")
_QUERY_SEPARATOR = re.compile(r"[&;#]")


def _url_has_token(url: str) -> bool:
    if _TOKEN_PATH_HOST.search(url.lower()):
        return True
    if "?" not in url and "#" not in url:
        return False
    query = _QUERY_START.split(url, maxsplit=1)[1]
    for pair in _QUERY_SEPARATOR.split(query):
        name, _, value = pair.partition("=")
        if name.lower() in _URL_SECRET_PARAMS and value and not _is_placeholder(value):
            return True
    return False


def _iban_checksum_ok(iban: str) -> bool:
    try:
        number = int((iban[4:] + iban[:4]).translate(_IBAN_LETTER_VALUES))
    except ValueError:
        return False
    return number % 97 == 1


_LUHN_DOUBLED = {str(digit): digit * 2 - 9 if digit > 4 else digit * 2 for digit in range(10)}


def _luhn_ok(digits: str) -> bool:
    total = sum(map(int, digits[-1::-2])) + sum(map(_LUHN_DOUBLED.__getitem__, digits[-2::-2]))
    return total % 10 == 0


def _card_prefix_ok(digits: str) -> bool:
    length = len(digits)
    two, four = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return length in (13, 16, 19)
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
        return 12 <= length <= 19
    return False


_CARD_SEPARATOR = re.compile(r"[ -]")


def _card_grouping_ok(raw: str) -> bool:
    # Cards are written as one run or in groups split by one kind of separator; 3-7-7 order numbers are not.
    groups = _CARD_SEPARATOR.split(raw)
    if len(groups) == 1:
        return True
    if " " in raw and "-" in raw:
        return False
    lengths = list(map(len, groups))
    return lengths[0] == 4 and min(lengths) >= 1 and max(lengths) <= 6


def _ssn_ok(area: str, group: str, serial: str) -> bool:
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


def _is_version_context(before: str) -> bool:
    """A version cue (`v`, `version`, `upgrade to`, `==`) or a product name (`Python 7.7.19.3`) precedes."""
    backwards = _backwards(before)
    if _VERSION_CUE.ends(backwards):
        return True
    return not _IP_CUE.ends(backwards) and bool(_PRODUCT_NAME.search(before))


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"  # 0-255 without leading zeros
_VALID_IPV4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")


def _valid_ipv4(address: str) -> bool:
    return _VALID_IPV4.fullmatch(address) is not None


_NON_DOT_SEPARATOR = re.compile(r"[\s()-]")


def _looks_like_version_or_decimal(core: str) -> bool:
    # 3.11.7, 1.250.000, 12.99, 192.168.10.200: numbers split by dots alone are versions, amounts, decimals
    # or addresses, except the dotted phone styles 541.325.2427 (US) and 06.12.34.56.78 (FR).
    dotted_only = "." in core and not _NON_DOT_SEPARATOR.search(core) and not core.startswith(("+", "00"))
    return dotted_only and not _DOTTED_PHONE.fullmatch(core)


@cache
def _national_number_pattern(regions: tuple[str, ...]) -> re.Pattern[str]:
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


def _valid_international(digits: str) -> bool:
    """`digits` (without `+` or `00`) start with a country code and a number valid in one of its regions."""
    for size in (1, 2, 3):
        national = _country_national_pattern(digits[:size])
        if national is not None:
            return national.fullmatch(digits, size) is not None
    return False


@cache
def _country_national_pattern(country_code: str) -> re.Pattern[str] | None:
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(country_code)) if country_code.isdigit() else None
    if not regions:
        return None
    return _national_number_pattern(tuple(region for region in regions if region != "001"))
