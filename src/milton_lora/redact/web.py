"""What is found from its punctuation: URLs (credentials, token query values, secret paths such as Telegram
bot URLs and webhooks), email addresses (also spelled out against address harvesters: `jane [at] example
[dot] com`, `jane dot doe at gmail dot com`), JWTs, PEM private keys and IPv6 addresses.

Decisions: web URLs with credentials or a token become one `[URL_WITH_TOKEN]`; database and broker
connection strings (`postgres://user:pass@host/db`) keep their shape and only the password becomes
`[PASSWORD]` (an IP address as their host is an IP_ADDRESS of its own).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from milton_lora.redact.labels import Span
from milton_lora.redact.validators import character_classes, is_placeholder

SEPARATOR = "\n\x00\n"
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
_DB_SCHEMES = frozenset({
    "postgres", "postgresql", "mysql", "mariadb", "mongodb", "mongodb+srv", "redis", "rediss", "amqp", "amqps",
    "mssql", "sqlserver", "oracle", "cockroachdb", "clickhouse", "nats", "kafka", "memcached", "ldap", "ldaps",
    "smtp", "smtps", "ftp", "sftp", "ssh", "jdbc:postgresql", "jdbc:mysql", "postgresql+psycopg2", "mysql+pymysql",
})  # fmt: skip
_USERINFO = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.:-]*)://(?P<user>[^:@/\s]*):(?P<password>[^@/\s]+)@")
# Query parameters whose value is a credential: by name, or by how the name ends (`invite_token`, `X-Amz-Signature`).
_SECRET_PARAMS = frozenset({
    "t", "tk", "tok", "k", "code", "key", "sig", "pwd", "pass", "password", "auth", "hmac", "otp", "session",
    "sessionid", "sid", "jwt", "apikey", "secret", "se", "sv", "x-amz-credential", "x-amz-security-token", "magic",
    "ticket", "signed", "hash", "s",
})  # fmt: skip
_SECRET_PARAM_ENDINGS = ("token", "_key", "-key", "apikey", "secret", "signature", "_sig", "password", "_code")
# Short or common names (`t`, `key`, `code`) take a value that looks random, not `?code=US` or `?t=42`.
_LOOSE_PARAMS = frozenset({"t", "tk", "k", "code", "key", "s", "sid", "session", "hash", "se", "sv", "ticket"})
# URLs whose path holds the secret: webhooks and Telegram bot URLs (`/bot<id>:<token>/`); each holds `hook` or
# `/bot`, which is looked for first (the pattern is searched at every position of the URL).
_SECRET_PATH = re.compile(
    r"hooks\.slack\.com/(?:services|workflows|triggers)/|discord(?:app)?\.com/api/webhooks/|"
    r"webhook\.office\.com/webhookb2/|api\.telegram\.org/(?:file/)?bot\d+:[\w-]{20,}|/bot\d{5,}:[\w-]{30,}"
)
_QUERY_START = re.compile(r"[?#]")
_QUERY_SEPARATOR = re.compile(r"[&;#]")

# An email is found from its `@`: the local part just before it, the domain after it.
_EMAIL_LOCAL = re.compile(r"(?<![\w.%+-])\w[\w.%+'’-]{0,63}\Z")
_LOCAL_PART_CHARS = re.compile(r"[\w.%+'’-]*")
_EMAIL_DOMAIN = re.compile(
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,24}(?![\w-])"
)
# An address spelled out: `[at]`, `(at)` or, with the domain's dots spelled too, a plain ` at `
# (`jane dot doe at gmail dot com`; `I work at example.com` is no address). The domain ends in a common TLD.
SPELLED_AT_ANCHORS = ["[at]", "(at)", "{at}", "<at>", "[ at ]", "( at )", " dot "]
_BRACKETED_AT = r"[^\S\n]*[\[({<][^\S\n]?at[^\S\n]?[\])}>][^\S\n]*"
_BRACKETED_DOT = r"[^\S\n]*[\[({<][^\S\n]?dot[^\S\n]?[\])}>][^\S\n]*"
_SPOKEN_DOT = rf"(?:{_BRACKETED_DOT}|[^\S\n]+dot[^\S\n]+)"
_ANY_DOT = rf"(?:{_SPOKEN_DOT}|\.)"
_END_OF_TLD = r"(?![\w-]|\.\w)"  # a full stop may end the sentence
_TLD = rf"(?:com|org|net|edu|gov|io|co|info|me|dev|app|de|fr|es|it|nl|uk|ch|at|se|pl|ie|in|au|br|jp|mx|ca){_END_OF_TLD}"
# Spoken, the TLDs that are not English words, after a domain label of three letters or more that is no article:
# `She worked at a dot com`, `at scale dot it` are prose.
_SPOKEN_TLD = rf"(?:com|org|net|edu|gov|io|info|dev|de|fr|es|nl|uk|ch|se|pl|ie|au|br|jp|mx|ca){_END_OF_TLD}"
# Each part repeats a bounded number of times, so a run of `a dot a dot ...` costs linear time.
_SPELLED_EMAIL = re.compile(
    rf"""(?ix)
    (?<![\w.+-])[\w+-]+(?:{_ANY_DOT}[\w+-]+){{0,3}}
    (?:{_BRACKETED_AT}[a-z0-9-]+(?:{_ANY_DOT}[a-z0-9-]+){{0,3}}{_ANY_DOT}{_TLD}
      |(?P<spoken>[^\S\n]+at[^\S\n]+)(?!(?:the|and|any|one|our|his|her|its)[^\S\n])[a-z0-9-]{{3,}}
        (?:{_SPOKEN_DOT}[a-z0-9-]+){{0,2}}{_SPOKEN_DOT}{_SPOKEN_TLD})
    """
)

_NOT_A_MAILBOX = frozenset(["look", "looking", "visit", "see", "check", "find", "go", "me", "us", "you", "him", "her",
                            "them", "it", "this", "that", "here", "there", "online", "available", "hosted", "live",
                            "lives", "work", "works", "is", "are", "was", "be", "found", "read"])  # fmt: skip

_IPV6 = re.compile(
    # with an IPv4 tail (`::ffff:192.0.2.1`), then the plain full and compressed forms
    r"(?<![\w:.])(?:(?:[0-9A-Fa-f]{1,4}:){6}|(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,5})?::(?:[0-9A-Fa-f]{1,4}:){0,5})"
    r"(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)"
    r"|(?<![\w:.])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])"
    r"|(?<![\w:.])(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?"
    r"(?:%\w+)?(?![\w:])"
)
# Every IPv6 address holds `::` (an anchor of the Aho-Corasick pass) or three groups in a row; times do not.
_IPV6_CHARS_BEFORE = re.compile(r"[0-9A-Fa-f:.]*")
_IPV6_CHARS_AFTER = re.compile(r"[\w:.%]*")
_IPV6_GROUPS = re.compile(r":[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:")
_KEPT_IPV6 = frozenset({"::1", "::"})


def run_start(text: str, pos: int, chars: re.Pattern[str], limit: int) -> int:
    """Where the run of `chars` that ends at `pos` starts, looking back at most `limit` characters.

    A pattern that must end at `pos` is then searched from there: its first try usually matches, where a
    search over the whole `limit` window would try every position before it.
    """
    return pos - chars.match(text[max(0, pos - limit) : pos][::-1]).end()


def private_keys(text: str, anchors: list[int]) -> list[Span]:
    return [(m.start(), m.end(), "PRIVATE_KEY") for pos in anchors if (m := _PRIVATE_KEY.match(text, pos))]


def jwts(text: str, anchors: list[int]) -> list[Span]:
    return [(m.start(), m.end(), "JWT") for pos in anchors if (m := _JWT.match(text, pos))]


def urls(text: str, anchors: list[int]) -> list[Span]:
    found = []
    for pos in anchors:
        scheme = _URL_SCHEME.search(text, run_start(text, pos, _SCHEME_CHARS, 21), pos)
        rest = _URL_REST.match(text, pos)
        if scheme is None or rest is None:
            continue
        start = scheme.start()
        url = text[start : rest.end()].rstrip(_URL_TRAILING)
        credentials = _USERINFO.match(url)
        if credentials and credentials.group("scheme").lower() in _DB_SCHEMES:
            if not is_placeholder(credentials.group("password")):
                begin, end = credentials.span("password")
                found.append((start + begin, start + end, "PASSWORD"))
        elif (credentials and not is_placeholder(credentials.group("password"))) or url_has_token(url):
            found.append((start, start + len(url), "URL_WITH_TOKEN"))
    return found


def url_has_token(url: str) -> bool:
    """A secret path (webhook, bot URL) or a query value that is a credential (`?token=`, `&sig=`, `?t=<random>`)."""
    if ("hook" in url or "/bot" in url) and _SECRET_PATH.search(url):
        return True
    if "?" not in url and "#" not in url:
        return False
    query = _QUERY_START.split(url, maxsplit=1)[1]
    for pair in _QUERY_SEPARATOR.split(query):
        name, _, value = pair.partition("=")
        name = name.lower()
        # The name first: most parameters (`page`, `utm_source`) name nothing secret, whatever their value.
        if name in _LOOSE_PARAMS:
            secret = _random_value(value)
        else:
            secret = name in _SECRET_PARAMS or name.endswith(_SECRET_PARAM_ENDINGS)
        if secret and value and not is_placeholder(value):
            return True
    return False


def _random_value(value: str) -> bool:
    return len(value) >= 12 and (character_classes(value) >= 2 or len(value) >= 24)


def emails(text: str, anchors: list[int]) -> list[Span]:
    found = []
    for pos in anchors:
        domain = _EMAIL_DOMAIN.match(text, pos)
        if domain is None:
            continue
        after = text[domain.end() : domain.end() + 2]
        if after[:1] == ":" and after[1:] not in ("", " ", "\n", "\t"):
            continue  # an SSH remote such as git@github.com:org/repo.git
        local = _EMAIL_LOCAL.search(text, run_start(text, pos, _LOCAL_PART_CHARS, 64), pos)
        if local is not None:
            found.append((local.start(), domain.end(), "EMAIL"))
    return found


def spelled_emails(text: str, anchors: list[int]) -> list[Span]:
    """Addresses spelled out around each anchor (`[at]`, `(at)`, ` dot `). With a plain ` at `, a word that
    points at a place rather than names a mailbox (`look at google dot com`) is no local part."""
    windows = _merge_windows((max(0, pos - 80), pos + 80) for pos in anchors)
    found = []
    for match in (m for lo, hi in windows for m in _SPELLED_EMAIL.finditer(text, lo, hi)):
        if match.group("spoken") and text[match.start() : match.start("spoken")].lower() in _NOT_A_MAILBOX:
            continue
        found.append((match.start(), match.end(), "EMAIL"))
    return found


def ipv6(text: str, double_colons: list[int]) -> list[Span]:
    # An address holding an anchor lies within the run of address characters around it; the stretch ends
    # two characters past that run so the pattern's lookahead sees the real text. An anchor inside the run of the
    # anchor before it (a full address holds two) adds nothing to that anchor's stretch.
    windows = []
    run_end = -1
    for anchor in sorted(double_colons + [m.start() for m in _IPV6_GROUPS.finditer(text)]):
        if anchor < run_end:
            continue
        run_end = _IPV6_CHARS_AFTER.match(text, anchor).end()
        windows.append((run_start(text, anchor, _IPV6_CHARS_BEFORE, 45), run_end + 2))
    stretches = _merge_windows(windows)
    found = []
    for match in (m for lo, hi in stretches for m in _IPV6.finditer(text, lo, hi)):
        address = match.group()
        if address in _KEPT_IPV6 or not any(map(str.isdigit, address)) or address.count(":") < 2:
            continue
        if _needs_parsing(address) and not _parses_as_ipv6(address):
            continue
        found.append((match.start(), match.end(), "IP_ADDRESS"))
    return found


def _needs_parsing(address: str) -> bool:
    """The pattern alone settles the full form (eight groups); `::`, an IPv4 tail or a zone need the parser."""
    return "::" in address or "." in address or "%" in address


def _parses_as_ipv6(address: str) -> bool:
    try:
        ipaddress.IPv6Address(address.split("%")[0])
    except ValueError:
        return False
    return True


def _merge_windows(windows: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for lo, hi in sorted(windows):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]
