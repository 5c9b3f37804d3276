"""The redaction tables: labels and their priority, default phone regions, findings, and every regex,
provider key format, secret-name list and context cue the detectors use.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

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
