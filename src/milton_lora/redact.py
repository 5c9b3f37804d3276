"""PII and secret redaction: one engine used by the export on every message and by `milton-lora redact`.

How it stays both accurate and fast (figures in the README, from `bench/redact_bench.py`):
- One Aho-Corasick pass (`ahocorasick_rs`) over the text, one byte per character, finds every literal
  anchor at once: `@`, `://`, `::`, `eyJ`, `-----BEGIN`, each provider's key prefix, `bearer`, `ssn`,
  and the secret-looking names (`password`, `token`, `api_key`...). Each detector then runs `match`
  at its anchors only, so the text is scanned once instead of once per detector.
- Numbers are found as runs of digits and separators on a byte-class copy of the text (`_NUMERIC_RUN`,
  IBAN starts), and a run is handed only to the detectors its digit count allows (cards need 12
  digits, SSNs 9, phones 7; IPv4 needs three dots).
- Validation is done on precompiled patterns (one union of the regions' national number patterns, a
  table for entropy), and the cyclic garbage collector is paused while a batch is scanned.
- Every candidate is validated before it is replaced: Luhn for cards, mod-97 and per-country length
  for IBANs, `phonenumbers`' numbering plans for phone numbers, octet ranges and context for IPs,
  Shannon entropy for secrets assigned to secret-looking names, placeholders (`sk-xxxx`, `<token>`) refused.
- Overlapping findings are resolved by priority (a JWT inside a URL is one `[URL_WITH_TOKEN]`).

Decisions (also in the README):
- URLs with credentials: web URLs (`https://user:pass@host/...`) become `[URL_WITH_TOKEN]` whole;
  database/broker connection strings (`postgres://user:pass@host/db`) keep their shape and only the
  password becomes `[PASSWORD]`.
- A bare four-part number (`10.1.2.3`) is an IP address unless a version cue precedes it
  (`version`, `v`, `release`, `upgrade to`, `==`, `@`...). Loopback/unspecified addresses and netmasks
  are kept.
- Phone numbers in national format are accepted when valid in one of `DEFAULT_REGIONS`; numbers
  written with `+` or `00` are validated against their own country code. A bare run of fewer than 10
  digits is a phone number only after a phone cue (`call me on`, `number is`, `tel`...).
- An IBAN is read to its country's exact length and kept when its mod-97 check holds, whatever follows.
- A secret-looking name is recognised in lower, UPPER, Capitalized, Title and camel case (`apiKey`,
  `ClientSecret`, `passPhrase`); other mixed spellings (`pAsSwOrD`) are not.
"""

from __future__ import annotations

import bisect
import gc
import ipaddress
import json
import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import NamedTuple

import ahocorasick_rs
import phonenumbers

from milton_lora.errors import MiltonError

LABELS = (
    "PRIVATE_KEY",
    "JWT",
    "URL_WITH_TOKEN",
    "PASSWORD",
    "API_KEY",
    "EMAIL",
    "IBAN",
    "CREDIT_CARD",
    "SSN",
    "IP_ADDRESS",
    "PHONE",
)
_PRIORITY = {label: len(LABELS) - rank for rank, label in enumerate(LABELS)}

DEFAULT_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "IN", "AU", "BR", "JP", "MX", "CH", "SE", "PL", "IE")


class Finding(NamedTuple):
    start: int
    end: int
    label: str


# Detectors pass plain (start, end, label) tuples around; a Finding is made only for what is reported.
_Span = tuple[int, int, str]


@dataclass
class Redaction:
    text: str
    counts: Counter[str] = field(default_factory=Counter)


# --- patterns ------------------------------------------------------------------------------------


def _backwards(text: str) -> str:
    """The text lower-cased and reversed: what every `_Cue` reads, made once for all the cues asked of it."""
    return text.lower()[::-1]


class _Cue:
    """Does a short text end with a cue (a word or symbol) followed by `tail`, ignoring case?

    Matched on the text `_backwards`, where it is one `match` at the start instead of a `search(...$)`
    that tries every position; `tail` is therefore written reversed. Whole words have a word boundary
    before them.
    """

    def __init__(self, reversed_tail: str, words: Iterable[str], *, whole_words: bool, symbols: Iterable[str] = ()):
        boundary = r"\b" if whole_words else ""
        cues = [re.escape(word[::-1]) + boundary for word in words] + [re.escape(symbol[::-1]) for symbol in symbols]
        self._pattern = re.compile(f"{reversed_tail}(?:{'|'.join(cues)})")

    def ends(self, backwards: str) -> bool:
        """Whether the text that `backwards` is `_backwards` of ends with this cue."""
        return self._pattern.match(backwards) is not None


_SEPARATOR = "\n\x00\n"
_BLOCK_CHARS = 1 << 20
# A key pasted without its END line is redacted to the end of the message (the NUL of a joined block).
_PEM_END = r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
# The body is consumed up to the first dash that starts the END line (or a NUL), not tried character by character.
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
    rf"[^\x00-]*(?:-(?!{_PEM_END[1:]})[^\x00-]*)*(?:{_PEM_END}|(?=\n\x00)|\Z)"
)
_JWT = re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{8,}")
# A URL is found from its `://`: the scheme is the name just before it, the rest runs to a space or quote.
_URL_SCHEME = re.compile(r"(?<![\w@])[a-zA-Z][a-zA-Z0-9+.-]{1,20}\Z")
_SCHEME_CHARS = re.compile(r"[a-zA-Z0-9+.-]*")
_URL_REST = re.compile(r"://[^\s<>\"'`]+")
_URL_TRAILING = ".,;:!?)]}'\""

# Provider formats. (prefix gate, pattern). Lengths follow the providers' documented key sizes loosely,
# long enough that placeholders such as `sk-xxxx` do not match.
_PROVIDER_KEYS: list[tuple[tuple[str, ...], re.Pattern[str]]] = [
    (("sk-",), re.compile(r"(?<![\w-])sk-(?:ant-|proj-|svcacct-|admin-|or-v1-)?[A-Za-z0-9_-]{20,}")),
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), re.compile(r"(?<!\w)gh[pousr]_[A-Za-z0-9]{30,}")),
    (("github_pat_",), re.compile(r"(?<!\w)github_pat_[A-Za-z0-9_]{22,}")),
    (("glpat-",), re.compile(r"(?<!\w)glpat-[A-Za-z0-9_-]{20,}")),
    (("AKIA", "ASIA", "ABIA", "ACCA"), re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])")),
    (("xox",), re.compile(r"(?<!\w)xox[abposre]-[A-Za-z0-9-]{10,}")),
    (("sk_live_", "rk_live_", "sk_test_", "rk_test_"), re.compile(r"(?<!\w)(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}")),
    (("AIza",), re.compile(r"(?<![\w-])AIza[0-9A-Za-z_-]{35}")),
    (("hf_",), re.compile(r"(?<!\w)hf_[A-Za-z0-9]{30,}")),
]

# Names that make the value assigned to them a secret, in the spellings people write them in: a password
# word makes it a PASSWORD, the others an API_KEY when it looks random.
_PASSWORD_WORDS = [("pass", "word"), ("passwd",), ("pwd",), ("pass", "phrase")]
_SECRET_WORDS = [("secret",), ("token",), ("auth",), ("credential",), ("api", "key"), ("access", "key"),
                 ("private", "key")]  # fmt: skip
# From a secret-looking name's keyword: the rest of the name, the operator, and the value on the same line.
_ASSIGNED_VALUE = re.compile(
    r"""(?x)
    (?P<rest>[\w.-]*)["']?[^\S\n]*(?::=|=>|=|:)[^\S\n]*
    (?:"(?P<dq>[^"\n]{3,})"|'(?P<sq>[^'\n]{3,})'|(?P<bare>[^\s"'`,;]{3,}))
    """
)
_BEARER = re.compile(r"(?i)(?<![\w-])bearer\s+(?P<value>[A-Za-z0-9._~+/-]{16,}=*)")
_DB_SCHEMES = {
    "postgres",
    "postgresql",
    "mysql",
    "mariadb",
    "mongodb",
    "mongodb+srv",
    "redis",
    "rediss",
    "amqp",
    "amqps",
    "mssql",
    "sqlserver",
    "oracle",
    "cockroachdb",
    "clickhouse",
    "nats",
    "kafka",
    "memcached",
    "ldap",
    "ldaps",
    "smtp",
    "smtps",
    "ftp",
    "sftp",
    "ssh",
}
_URL_SECRET_PARAMS = {
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth",
    "auth_token",
    "key",
    "api_key",
    "apikey",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "client_secret",
    "secret",
    "password",
    "pass",
    "pwd",
    "session",
    "sessionid",
    "code",
    "x-goog-signature",
    "se",
    "sv",
    "private_token",
    "hmac",
}
# Webhook URLs whose path is the secret.
_TOKEN_PATH_HOST = re.compile(r"hooks\.slack\.com/services/|discord(?:app)?\.com/api/webhooks/")
_USERINFO = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://(?P<user>[^:@/\s]*):(?P<password>[^@/\s]+)@")

# An email is found from its `@`: the local part just before it, the domain after it.
_EMAIL_LOCAL = re.compile(r"(?<![\w.%+-])\w[\w.%+'’-]{0,63}\Z")
_LOCAL_PART_CHARS = re.compile(r"[\w.%+'’-]*")
_EMAIL_DOMAIN = re.compile(
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,24}(?![\w-])"
)

_IBAN_LETTER_VALUES = str.maketrans({letter: str(value) for value, letter in enumerate(string.ascii_uppercase, 10)})
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24,
    "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21,
    "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21,
    "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30,
    "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}  # fmt: skip
# An IBAN is read to exactly its country's length (single spaces allowed between characters); the mod-97
# check then decides, so one glued to the next word (`...0130 00ynx`) is still caught.
_IBAN_BY_LENGTH = {
    length: re.compile(rf"[A-Z]{{2}}\d{{2}}(?: ?[A-Z0-9]){{{length - 4}}}") for length in set(_IBAN_LENGTHS.values())
}

# Patterns scanned over a stretch of text start with a character class and check the character before
# their first one in a lookbehind placed after it: a pattern that opens with a lookbehind is tried at
# every position, one that opens with a class skips ahead at C speed.
_CARD = re.compile(r"\d(?<![\d.,-]\d)(?:[ -]?\d){12,18}(?![\d-]|[.,]\d)")
_SSN = re.compile(r"(\d(?<![\d-]\d)\d\d)-(\d{2})-(\d{4})(?![\d-])")
# `SSN: `, `social security no. `
_SSN_CONTEXT = _Cue(
    r"\s*[:=]?\s*(?:#|\.?on|rebmun)?\s*",
    ["ssn", "social security", "social security number", "social security no", "social security no."],
    whole_words=False,
)
_SSN_PLAIN = re.compile(r"(\d(?<![\d-]\d)\d\d)[ ]?(\d{2})[ ]?(\d{4})(?![\d-])")

_IPV4 = re.compile(r"\d(?<![\w.]\d)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(
    # with an IPv4 tail (`::ffff:192.0.2.1`), then the plain full and compressed forms
    r"(?<![\w:.])(?:(?:[0-9A-Fa-f]{1,4}:){6}|(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,5})?::(?:[0-9A-Fa-f]{1,4}:){0,5})"
    r"(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)"
    r"|(?<![\w:.])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])"
    r"|(?<![\w:.])(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?"
    r"(?:%\w+)?(?![\w:])"
)
# `version `, `upgrade to `, `v`, `==`: what precedes a version number that looks like an IPv4 address.
_VERSION_CUE = _Cue(
    r"\s*[:=]?(?:\s+(?:ot|morf|ta))?\s*",
    ["version", "ver", "ver.", "v", "build", "firmware", "patch", "patched", "bump", "bumped", "pin", "pinned", "tag",
     *(f"{verb}{ending}" for verb in ("release", "update", "upgrade", "downgrade") for ending in ("", "d", "s"))],
    whole_words=True,
    symbols=["==", ">=", "<=", "~=", "!=", "^", "~", "@", "-"],
)  # fmt: skip
# `host `, `ssh `, `connect to `, `@`: what precedes an IP address.
_IP_CUE = _Cue(
    r"\W{0,3}",
    ["ip", "host", "hostname", "server", "address", "addr", "ssh", "ping", "connect", "connected", "connecting",
     "gateway", "dns", "proxy", "from", "to", "at", "via", "on", "node", "peer", "client"],
    whole_words=True,
    symbols=["//", "@"],
)  # fmt: skip
_PRODUCT_NAME = re.compile(r"[A-Z](?<!\w[A-Z])[\w+#-]*\s$")
# Every IPv6 address holds `::` (an anchor of the Aho-Corasick pass) or three groups in a row; times do not.
_IPV6_CHARS_BEFORE = re.compile(r"[0-9A-Fa-f:.]*")
_IPV6_CHARS_AFTER = re.compile(r"[\w:.%]*")
_IPV6_GROUPS = re.compile(r":[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:")
_KEPT_IPS = {"127.0.0.1", "0.0.0.0", "255.255.255.255", "::1", "::"}

_PHONE = re.compile(
    r"(?<![\w.:/+#=-])(?:\+|00)?\(?\d[\d\s().-]{5,24}\d(?:\s*(?:x|ext\.?|#)\s*\d{1,6})?(?![\w]|[.:/-]\w)"
)
# Where a phone number can start: the opening of `_PHONE`, up to its first digit.
_PHONE_START = re.compile(r"(?<![\w.:/+#=-])(?:\+|00)?\(?\d")
_PHONE_EXTENSION = re.compile(r"\s*(?:x|ext\.?|#)\s*\d{1,6}$")
_DATE_LIKE = re.compile(r"\d{1,4}([./-])\d{1,2}\1\d{1,4}$|\d{4}-\d{2}-\d{2}|\d{1,2}[:.]\d{2}$")  # used with match
# `order #`, `invoice no. `, `ISBN `, `ref: `: what precedes a number that is not a phone number.
_NOT_PHONE_CUE = _Cue(
    r"\s*[:=]?\s*(?:rebmun|\.?on|#)?\s*",
    ["order", "invoice", "ref", "reference", "isbn", "isbn-10", "isbn-13", "tracking", "ticket", "case", "po", "sku",
     "account", "acct", "id", "no.", "commit", "sha", "rev", "revision"],
    whole_words=True,
    symbols=["#"],
)  # fmt: skip
# `call me on `, `her number is `, `phone: `: what lets a bare run of fewer than 10 digits be a phone number.
_PHONE_CUE = _Cue(
    r"\s*[:=]?\s*(?:si\s+)?(?:(?:no|ta)\s+)?(?:em\s+)?",
    ["call", "phone", "telephone", "tel", "tel.", "mobile", "cell", "whatsapp", "ring", "text", "sms", "fax", "reach",
     "number", "handy", "telefon", "téléphone", "portable", "telefono", "teléfono", "móvil", "celular"],
    whole_words=True,
)  # fmt: skip
# Character classes of a text, one byte per character: ASCII digits `0`, upper- and lower-case ASCII letters
# `A` and `a`, the separators that numbers are written with `.`, anything else a space. Literal searches
# over these classes run at memchr speed, where a regex character class is tried at every position.
_CHARACTER_CLASSES = bytes(
    ord("0") if char.isdigit() else ord("A") if char.isupper() else ord("a") if char.islower()
    else ord(".") if char in " ().+/-" else ord(" ")
    for char in map(chr, range(128))
) + b" " * 128  # fmt: skip
# Runs of digits and separators long enough to hold a phone, card, SSN or IPv4 address: `[0-9][0-9 ().+/-]{5,}`.
_NUMERIC_RUN = re.compile(rb"0[0.]{5,}")
# Where an IBAN can start: two capitals and two digits, not inside a word (`[A-Z]{2}\d{2}` after no `[A-Za-z0-9]`).
_IBAN_START = re.compile(rb"AA00(?<![Aa0]AA00)")
_WORD_CHARS = re.compile(r"\w*")
_LAST_GROUP = re.compile(r"\s+\S+$")
_NON_DIGITS = re.compile(r"\D")
_DIGIT = re.compile(r"\d")
_DOTTED_PHONE = re.compile(r"\d{3}\.\d{3}\.\d{4}|\d{2}(?:\.\d{2}){4}")
_UNIX_TIME = re.compile(r"1\d{9}(?:\d{3})?")
_SEPARATORS = re.compile(r"[\s().-]+")


# --- the anchor pass ------------------------------------------------------------------------------


def _case_spellings(phrase: str) -> set[str]:
    """`social security` as written: lower, UPPER, Title and Sentence case."""
    return {phrase, phrase.upper(), phrase.title(), phrase.capitalize()}


def _spellings(parts: tuple[str, ...]) -> set[str]:
    """`api key` as api_key, API_KEY, Api_key, Api_Key, api_Key, apikey, APIKEY, Apikey, ApiKey, apiKey, api-key..."""
    spellings = set()
    for joiner in ("_", "-", "") if len(parts) > 1 else ("",):
        lower = joiner.join(parts)
        titled = joiner.join(part.title() for part in parts)
        spellings |= {lower, lower.upper(), lower.capitalize(), titled, parts[0] + titled[len(parts[0]) :]}
    return spellings


class _Anchors:
    """Every literal that starts (or sits inside) something a detector looks for, found in one pass."""

    PEM, JWT, URL, EMAIL, DOUBLE_COLON, PASSWORD_NAME, SECRET_NAME, BEARER, SSN_CUE, KEY = range(10)

    def __init__(self) -> None:
        table: list[tuple[str, int, re.Pattern[str] | None]] = [
            ("-----BEGIN", self.PEM, None),
            ("eyJ", self.JWT, None),
            ("://", self.URL, None),
            ("@", self.EMAIL, None),
            ("::", self.DOUBLE_COLON, None),
            *((word, self.BEARER, None) for word in ("bearer", "Bearer", "BEARER")),
            *((word, self.SSN_CUE, None) for cue in ("ssn", "social security") for word in _case_spellings(cue)),
            *((word, self.PASSWORD_NAME, None) for parts in _PASSWORD_WORDS for word in sorted(_spellings(parts))),
            *((word, self.SECRET_NAME, None) for parts in _SECRET_WORDS for word in sorted(_spellings(parts))),
            *((prefix, self.KEY, pattern) for prefixes, pattern in _PROVIDER_KEYS for prefix in prefixes),
        ]
        self.kinds = [kind for _, kind, _ in table]
        self.patterns = [pattern for _, _, pattern in table]
        self.automaton = ahocorasick_rs.BytesAhoCorasick(
            [literal.encode() for literal, _, _ in table], implementation=ahocorasick_rs.Implementation.DFA
        )

    def find(self, latin: bytes) -> tuple[list[list[int]], list[tuple[int, re.Pattern[str]]]]:
        """Positions per kind, and provider-key positions with the pattern their prefix belongs to.

        `latin` is the text with one byte per character (see `_one_byte_per_character`); every anchor is
        ASCII, so its offsets there are its offsets in the text.
        """
        by_kind: list[list[int]] = [[] for _ in range(self.KEY)]
        keys = []
        kinds, patterns = self.kinds, self.patterns
        for index, start, _ in self.automaton.find_matches_as_indexes(latin, overlapping=True):
            kind = kinds[index]
            if kind == self.KEY:
                keys.append((start, patterns[index]))
            else:
                by_kind[kind].append(start)
        return by_kind, keys


_ANCHORS = _Anchors()


# --- the engine ----------------------------------------------------------------------------------


class Redactor:
    """Find and replace PII and secrets. Stateless apart from its region list; safe to share."""

    def __init__(self, regions: Iterable[str] = DEFAULT_REGIONS):
        self.regions = tuple(regions)
        self._national = _national_number_pattern(self.regions)

    def find(self, text: str) -> list[Finding]:
        """Non-overlapping findings, in text order."""
        return [Finding(*span) for span in self._spans(text)]

    def _spans(self, text: str) -> list[_Span]:
        latin = _one_byte_per_character(text)
        classes = latin.translate(_CHARACTER_CLASSES)
        anchors, keys = _ANCHORS.find(latin)
        provider_keys = _provider_keys(text, keys)
        candidates = [
            *provider_keys,
            *_private_keys(text, anchors[_Anchors.PEM]),
            *_jwts(text, anchors[_Anchors.JWT]),
            *_urls(text, anchors[_Anchors.URL]),
            *_emails(text, anchors[_Anchors.EMAIL]),
            *_assignments(text, anchors[_Anchors.PASSWORD_NAME], anchors[_Anchors.SECRET_NAME], provider_keys),
            *_bearer_tokens(text, anchors[_Anchors.BEARER]),
            *_ipv6(text, anchors[_Anchors.DOUBLE_COLON]),
        ]
        ibans = _ibans(text, classes)
        candidates += ibans
        candidates += self._numbers(text, classes, ibans, anchors[_Anchors.SSN_CUE])
        return _resolve_overlaps(candidates)

    def redact(self, text: str) -> Redaction:
        return _apply(text, self.find(text))

    def find_many(self, texts: list[str]) -> list[list[Finding]]:
        """Findings for each text, scanning them joined in large blocks.

        Joining amortises the per-call cost of every scan over many messages, which is what makes the
        export fast. The separator starts with a newline and holds a NUL, which no pattern crosses; a
        text that itself holds a NUL is scanned on its own.
        """
        results: list[list[Finding]] = [[] for _ in texts]
        block: list[int] = []
        size = 0
        with _cyclic_gc_paused():
            for index, text in enumerate(texts):
                if "\x00" in text:
                    results[index] = self.find(text)
                    continue
                block.append(index)
                size += len(text)
                if size >= _BLOCK_CHARS:
                    self._find_block(texts, block, results)
                    block, size = [], 0
            self._find_block(texts, block, results)
        return results

    def redact_many(self, texts: list[str]) -> list[Redaction]:
        return [_apply(text, findings) for text, findings in zip(texts, self.find_many(texts), strict=True)]

    def _find_block(self, texts: list[str], block: list[int], results: list[list[Finding]]) -> None:
        if not block:
            return
        joined = _SEPARATOR.join(texts[i] for i in block)
        starts = []
        offset = 0
        for index in block:
            starts.append(offset)
            offset += len(texts[index]) + len(_SEPARATOR)
        for start, end, label in self._spans(joined):
            position = bisect.bisect_right(starts, start) - 1
            base = starts[position]
            results[block[position]].append(Finding(start - base, end - base, label))

    def _numbers(self, text: str, classes: bytes, ibans: list[_Span], ssn_cues: list[int]) -> list[_Span]:
        """Cards, SSNs, IPv4 addresses and phone numbers, each looked for only in runs that can hold one.

        PHONE has the lowest priority, so a run whose digits all lie inside a card, SSN, IP address or IBAN
        (`ibans`, in text order) is not searched for phone numbers. An SSN written without dashes is looked
        for only within 40 characters after one of `ssn_cues` (positions of `SSN`, `social security`).
        """
        found: list[_Span] = []
        next_iban = 0
        count_in_classes, count_in_text = classes.count, text.count  # bound once: this loop runs per number
        for run in _NUMERIC_RUN.finditer(classes):
            start, end = run.span()
            digits = count_in_classes(b"0", start, end)
            # A run ends before a character outside it, which the detectors' trailing lookaheads must see.
            context_end = end + 2
            taken = _ipv4(text, start, context_end) if digits >= 4 and count_in_text(".", start, end) >= 3 else []
            if digits < 7:
                found += taken
                continue
            if digits >= 12:
                taken += _cards(text, start, context_end)
            if digits >= 9:
                cue = bisect.bisect_left(ssn_cues, start - 40)
                taken += _ssns(text, start, context_end, cued=cue < len(ssn_cues) and ssn_cues[cue] < end)
            found += taken
            while next_iban < len(ibans) and ibans[next_iban][1] <= start:
                next_iban += 1
            if next_iban < len(ibans) and ibans[next_iban][0] < end:
                taken.append(ibans[next_iban])
            last_digit = classes.rfind(b"0", start, end)
            if not (taken and any(f[0] <= start and f[1] > last_digit for f in taken)):
                found += self._phones(text, start, last_digit + 1, taken)
        return found

    def _phones(self, text: str, run_start: int, digits_end: int, taken: list[_Span]) -> list[_Span]:
        """Phone numbers that start in a run of digits, skipping candidates that overlap a finding `taken` there.

        A number may start two characters before its run (`+(`) and run past its last digit (`x 12`, a
        tab). Starts are looked for within the run only; each candidate is then matched against the text
        that follows, far enough and never ending inside a word, so the pattern's lookahead sees the real
        text. Candidates starting after the run are left to the next run.
        """
        found: list[_Span] = []
        hi = _WORD_CHARS.match(text, digits_end + 32).end() + 2
        position = max(0, run_start - 2)
        while begin := _PHONE_START.search(text, position, digits_end):
            match = _PHONE.match(text, begin.start(), hi)
            if match is None:
                position = begin.start() + 1
                continue
            position = match.end()
            if not (taken and any(f[0] < match.end() and match.start() < f[1] for f in taken)):
                found += self._longest_valid_phone(text, match)
        return found

    def _longest_valid_phone(self, text: str, match: re.Match[str]) -> list[_Span]:
        # The candidate class allows spaces, so a following number can be glued on: drop trailing
        # space-separated groups until the rest validates.
        candidate, start = match.group(), match.start()
        while candidate:
            if self._is_phone(candidate, text, start):
                return [(start, start + len(candidate), "PHONE")]
            trimmed = _LAST_GROUP.sub("", candidate)
            if trimmed == candidate:
                break
            candidate = trimmed
        return []

    def _is_phone(self, candidate: str, text: str, start: int) -> bool:
        has_extension = "x" in candidate or "#" in candidate
        core = (_PHONE_EXTENSION.sub("", candidate) if has_extension else candidate).strip()
        national = _NON_DIGITS.sub("", core)
        if not 7 <= len(national) <= 15 or _DATE_LIKE.match(core) or _looks_like_version_or_decimal(core):
            return False
        before = _backwards(text[max(0, start - 24) : start])
        if _NOT_PHONE_CUE.ends(before):
            return False
        if core.startswith(("+", "00")):
            return _valid_international(national[2:] if core.startswith("00") else national)
        # A bare run of digits: a Unix timestamp is not a phone number, and one of fewer than 10 digits is
        # taken for one only after a phone cue (`call me on 347233020`).
        bare = not _SEPARATORS.search(core)
        if bare and (_UNIX_TIME.fullmatch(core) or (len(national) < 10 and not _PHONE_CUE.ends(before))):
            return False
        return bool(self._national.fullmatch(national))


# Each detector takes the positions of its anchors (or a stretch of text) and returns validated findings;
# overlaps between detectors are resolved later.


def _run_start(text: str, pos: int, chars: re.Pattern[str], limit: int) -> int:
    """Where the run of `chars` that ends at `pos` starts, looking back at most `limit` characters.

    A pattern that must end at `pos` is then searched from there: its first try usually matches, where a
    search over the whole `limit` window would try every position before it.
    """
    return pos - chars.match(text[max(0, pos - limit) : pos][::-1]).end()


def _private_keys(text: str, anchors: list[int]) -> list[_Span]:
    return [(m.start(), m.end(), "PRIVATE_KEY") for pos in anchors if (m := _PRIVATE_KEY.match(text, pos))]


def _jwts(text: str, anchors: list[int]) -> list[_Span]:
    return [(m.start(), m.end(), "JWT") for pos in anchors if (m := _JWT.match(text, pos))]


def _urls(text: str, anchors: list[int]) -> list[_Span]:
    found = []
    for pos in anchors:
        scheme = _URL_SCHEME.search(text, _run_start(text, pos, _SCHEME_CHARS, 21), pos)
        rest = _URL_REST.match(text, pos)
        if scheme is None or rest is None:
            continue
        start = scheme.start()
        url = text[start : rest.end()].rstrip(_URL_TRAILING)
        credentials = _USERINFO.match(url)
        if credentials and credentials.group("scheme").lower() in _DB_SCHEMES:
            if not _is_placeholder(credentials.group("password")):
                begin, end = credentials.span("password")
                found.append((start + begin, start + end, "PASSWORD"))
        elif (credentials and not _is_placeholder(credentials.group("password"))) or _url_has_token(url):
            found.append((start, start + len(url), "URL_WITH_TOKEN"))
    return found


def _emails(text: str, anchors: list[int]) -> list[_Span]:
    found = []
    for pos in anchors:
        domain = _EMAIL_DOMAIN.match(text, pos)
        if domain is None:
            continue
        after = text[domain.end() : domain.end() + 2]
        if after[:1] == ":" and after[1:] not in ("", " ", "\n", "\t"):
            continue  # an SSH remote such as git@github.com:org/repo.git
        local = _EMAIL_LOCAL.search(text, _run_start(text, pos, _LOCAL_PART_CHARS, 64), pos)
        if local is not None:
            found.append((local.start(), domain.end(), "EMAIL"))
    return found


def _assignments(
    text: str, password_names: list[int], secret_names: list[int], provider_keys: list[_Span]
) -> list[_Span]:
    """Values assigned to secret-looking names: a PASSWORD where the name holds a password word (`DB_PASSWORD`),
    else an API_KEY where the value looks random (`SECRET_KEY`, `apiToken`). A value that is exactly a
    provider key found already (`OPENAI_API_KEY=sk-...`) is not measured again."""
    known_keys = set(provider_keys)
    assigned: dict[int, tuple[re.Match[str], bool]] = {}  # by the end of the name: `auth_token` has two anchors
    for pos in password_names:
        if match := _ASSIGNED_VALUE.match(text, pos):
            assigned[match.end("rest")] = (match, True)
    for pos in secret_names:
        if (match := _ASSIGNED_VALUE.match(text, pos)) and match.end("rest") not in assigned:
            assigned[match.end("rest")] = (match, False)
    found = []
    for match, is_password in assigned.values():
        group = "dq" if match.group("dq") else "sq" if match.group("sq") else "bare"
        start, value = match.start(group), match.group(group)
        # `f(password=pw)`: without the call's closing bracket the value is a variable, not a secret.
        unbracketed = value.rstrip(")]}") if group == "bare" else value
        if _is_placeholder(unbracketed) or _looks_like_code(unbracketed):
            continue
        end = start + len(value)
        if is_password:
            found.append((start, end, "PASSWORD"))
        elif (start, end, "API_KEY") not in known_keys and _high_entropy(value):
            found.append((start, end, "API_KEY"))
    return found


def _bearer_tokens(text: str, anchors: list[int]) -> list[_Span]:
    found = []
    for pos in anchors:
        match = _BEARER.match(text, pos)
        if match is None or _JWT.match(text, match.start("value")):
            continue  # a JWT is reported as one by its own detector, which outranks API_KEY
        if _high_entropy(match.group("value")):
            found.append((match.start("value"), match.end("value"), "API_KEY"))
    return found


def _provider_keys(text: str, anchors: list[tuple[int, re.Pattern[str]]]) -> list[_Span]:
    found = []
    for pos, pattern in anchors:
        match = pattern.match(text, pos)
        if match and _looks_random(match.group()):
            found.append((match.start(), match.end(), "API_KEY"))
    return found


def _ipv6(text: str, double_colons: list[int]) -> list[_Span]:
    anchors = double_colons + [m.start() for m in _IPV6_GROUPS.finditer(text)]
    # An address holding an anchor lies within the run of address characters around it; the stretch ends
    # two characters past that run so the pattern's lookahead sees the real text.
    stretches = _merge_windows(
        (_run_start(text, a, _IPV6_CHARS_BEFORE, 45), _IPV6_CHARS_AFTER.match(text, a).end() + 2) for a in anchors
    )
    found = []
    for match in (m for lo, hi in stretches for m in _IPV6.finditer(text, lo, hi)):
        address = match.group()
        if address in _KEPT_IPS or not any(ch.isdigit() for ch in address) or address.count(":") < 2:
            continue
        try:
            ipaddress.IPv6Address(address.split("%")[0])
        except ValueError:
            continue
        found.append((match.start(), match.end(), "IP_ADDRESS"))
    return found


def _ibans(text: str, classes: bytes) -> list[_Span]:
    found = []
    for anchor in _IBAN_START.finditer(classes):
        start = anchor.start()
        length = _IBAN_LENGTHS.get(text[start : start + 2])
        match = _IBAN_BY_LENGTH[length].match(text, start) if length else None
        if match and _iban_checksum_ok(match.group().replace(" ", "")):
            found.append((start, match.end(), "IBAN"))
    return found


def _cards(text: str, lo: int, hi: int) -> list[_Span]:
    found = []
    for match in _CARD.finditer(text, lo, hi):
        raw = match.group()
        digits = raw.replace(" ", "").replace("-", "")
        if _card_grouping_ok(raw) and _card_prefix_ok(digits) and _luhn_ok(digits):
            found.append((match.start(), match.end(), "CREDIT_CARD"))
    return found


def _ssns(text: str, lo: int, hi: int, *, cued: bool) -> list[_Span]:
    found = []
    if text.find("-", lo, hi) != -1:
        found += [(m.start(), m.end(), "SSN") for m in _SSN.finditer(text, lo, hi) if _ssn_ok(*m.groups())]
    if cued:
        for match in _SSN_PLAIN.finditer(text, lo, hi):
            before = text[max(0, match.start() - 40) : match.start()]
            if _ssn_ok(*match.groups()) and _SSN_CONTEXT.ends(_backwards(before)):
                found.append((match.start(), match.end(), "SSN"))
    return found


def _ipv4(text: str, lo: int, hi: int) -> list[_Span]:
    found = []
    for match in _IPV4.finditer(text, lo, hi):
        address = match.group()
        if not _valid_ipv4(address) or address in _KEPT_IPS or address.startswith("255."):
            continue
        if _is_version_context(text[max(0, match.start() - 30) : match.start()]):
            continue
        found.append((match.start(), match.end(), "IP_ADDRESS"))
    return found


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a batch is scanned.

    A scan allocates hundreds of thousands of short-lived, acyclic objects (regex matches, tuples); with
    the collector on, those allocations keep triggering collections that walk the caller's whole heap
    (the conversations being exported), about 7% of the time in bench/redact_bench.py. Nothing is
    leaked: reference counting frees everything as usual, and the collector resumes afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _one_byte_per_character(text: str) -> bytes:
    """The text in Latin-1, anything outside it as `?`: one byte per character, so offsets carry over."""
    return text.encode("latin-1", "replace")


def _apply(text: str, findings: list[Finding]) -> Redaction:
    if not findings:
        return Redaction(text)
    pieces: list[str] = []
    cursor = 0
    counts: Counter[str] = Counter()
    for finding in findings:
        pieces.append(text[cursor : finding.start])
        pieces.append(f"[{finding.label}]")
        cursor = finding.end
        counts[finding.label] += 1
    pieces.append(text[cursor:])
    return Redaction("".join(pieces), counts)


def _merge_windows(windows: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for lo, hi in sorted(windows):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def _resolve_overlaps(candidates: list[_Span]) -> list[_Span]:
    """Keep the highest-priority finding where candidates overlap (then the earliest, then the longest).

    Candidates are split into clusters of mutually reachable overlaps; almost every cluster is a single
    finding, and only real clusters pay for the priority order.
    """
    ordered = sorted(candidates)
    chosen: list[_Span] = []
    first, count = 0, len(ordered)
    while first < count:
        after, cluster_end = first + 1, ordered[first][1]
        while after < count and ordered[after][0] < cluster_end:
            if ordered[after][1] > cluster_end:
                cluster_end = ordered[after][1]
            after += 1
        if after == first + 1:
            chosen.append(ordered[first])
        else:
            chosen += _resolve_cluster(ordered[first:after])
        first = after
    return chosen


def _resolve_cluster(cluster: list[_Span]) -> list[_Span]:
    starts: list[int] = []
    chosen: list[_Span] = []
    for finding in sorted(cluster, key=lambda f: (-_PRIORITY[f[2]], f[0], f[0] - f[1])):
        index = bisect.bisect_right(starts, finding[0])
        if index > 0 and chosen[index - 1][1] > finding[0]:
            continue
        if index < len(chosen) and chosen[index][0] < finding[1]:
            continue
        starts.insert(index, finding[0])
        chosen.insert(index, finding)
    return chosen


# --- validators ----------------------------------------------------------------------------------


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


def redact_jsonl_lines(redactor: Redactor, lines: list[str], source: str) -> tuple[list[str], Counter[str]]:
    """Redact the `text` of each `{"text": ...}` line, keeping other keys and the order.

    Every line is parsed before any output is produced, so a bad line yields an error naming it and
    no partial output.
    """
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            message = f'{source}:{number}: not valid JSON ({exc.msg}); expected one {{"text": ...}} per line'
            raise MiltonError(message) from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise MiltonError(f'{source}:{number}: expected an object with a string "text" key')
        records.append(record)
    totals: Counter[str] = Counter()
    for record, result in zip(records, redactor.redact_many([r["text"] for r in records]), strict=True):
        record["text"] = result.text
        totals.update(result.counts)
    return [json.dumps(record, ensure_ascii=False) for record in records], totals


_DEFAULT = Redactor()


def redact_text(text: str) -> str:
    """Redact with the default engine (the export's settings)."""
    return _DEFAULT.redact(text).text
