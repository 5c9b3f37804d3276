"""PII and secret redaction: one engine used by the export on every message and by `milton-lora redact`.

How it stays both accurate and fast:
- Each detector is gated by a cheap substring test (`"@"`, `"://"`, `"eyJ"`, a key prefix, a digit), so
  most text is never scanned by most regexes.
- Every candidate is validated before it is replaced: Luhn for cards, mod-97 and per-country length
  for IBANs, `phonenumbers` validity for phone numbers, octet ranges and context for IPs, Shannon
  entropy for secrets assigned to secret-looking names, placeholders (`sk-xxxx`, `<token>`) refused.
- Overlapping findings are resolved by priority (a JWT inside a URL is one `[URL_WITH_TOKEN]`).

Decisions (also in the README):
- URLs with credentials: web URLs (`https://user:pass@host/...`) become `[URL_WITH_TOKEN]` whole;
  database/broker connection strings (`postgres://user:pass@host/db`) keep their shape and only the
  password becomes `[PASSWORD]`.
- A bare four-part number (`10.1.2.3`) is an IP address unless a version cue precedes it
  (`version`, `v`, `release`, `upgrade to`, `==`, `@`...). Loopback/unspecified addresses and netmasks
  are kept.
- Phone numbers in national format are accepted when valid in one of `DEFAULT_REGIONS`; numbers
  written with `+` or `00` are validated against their own country code.
"""

from __future__ import annotations

import bisect
import ipaddress
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache

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


@dataclass(frozen=True, order=True)
class Finding:
    start: int
    end: int
    label: str


@dataclass
class Redaction:
    text: str
    counts: Counter[str] = field(default_factory=Counter)


# --- patterns ------------------------------------------------------------------------------------

_SEPARATOR = "\n\x00\n"
_BLOCK_CHARS = 1 << 20
# A key pasted without its END line is redacted to the end of the message (the NUL of a joined block).
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[^\x00]*?"
    r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|(?=\n\x00)|\Z)"
)
_JWT = re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{8,}")
_URL = re.compile(r"(?<![\w@])[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s<>\"'`]+")
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

# Where a secret-looking name is followed by an assignment operator; run on lower-cased text.
_ASSIGNMENT_ANCHOR = re.compile(
    r"(?:secret|token|passw|pwd|passphrase|api[_-]?key|apikey|access[_-]?key|accesskey|private[_-]?key|auth"
    r"|credential)[\w.-]*[\"']?[ \t]*(?::=|=>|=|:)"
)
_ASSIGNMENT = re.compile(
    r"""(?ix)
    (?<![\w.-])(?P<name>[\w.-]*?(?:secret|token|passw(?:or)?d|passwd|pwd|passphrase|api[_-]?key|access[_-]?key
        |private[_-]?key|auth(?:_?key)?|credentials?)[\w.-]*)
    ["']?\s*(?::=|=>|=|:)\s*
    (?:"(?P<dq>[^"\n]{3,})"|'(?P<sq>[^'\n]{3,})'|(?P<bare>[^\s"'`,;]{3,}))
    """
)
_BEARER = re.compile(r"(?i)(?<![\w-])bearer\s+(?P<value>[A-Za-z0-9._~+/-]{16,}=*)")
_PASSWORD_NAME = re.compile(r"(?i)passw(?:or)?d|passwd|pwd|passphrase")
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
_TOKEN_PATH_HOSTS = ("hooks.slack.com/services/", "discord.com/api/webhooks/", "discordapp.com/api/webhooks/")
_USERINFO = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://(?P<user>[^:@/\s]*):(?P<password>[^@/\s]+)@")

_EMAIL = re.compile(
    r"(?<![\w.%+-])\w[\w.%+'’-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![\w-])"
)

_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24,
    "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21,
    "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21,
    "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30,
    "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}  # fmt: skip

_CARD = re.compile(r"(?<![\d.,-])\d(?:[ -]?\d){12,18}(?![\d-]|[.,]\d)")
_SSN = re.compile(r"(?<![\d-])(\d{3})-(\d{2})-(\d{4})(?![\d-])")
_SSN_CONTEXT = re.compile(r"(?i)(?:ssn|social security(?: number| no\.?)?)\s*(?:#|no\.?|number)?\s*[:=]?\s*$")
_SSN_PLAIN = re.compile(r"(?<![\d-])(\d{3})[ ]?(\d{2})[ ]?(\d{4})(?![\d-])")

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])"
    r"|(?<![\w:.])(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?"
    r"(?:%\w+)?(?![\w:])"
)
_VERSION_CUE = re.compile(
    r"(?ix)(?:\bversion|\bver\.?|\bv|\brelease[ds]?|\bbuild|\bfirmware|\bpatch(?:ed)?|\bupdate[ds]?|\bupgrade[ds]?"
    r"|\bdowngrade[ds]?|\bbump(?:ed)?|\bpin(?:ned)?|\btag|==|>=|<=|~=|!=|\^|~|@|-)\s*(?:to\s+|from\s+|at\s+)?[:=]?\s*$"
)
_IP_CUE = re.compile(
    r"(?i)(?:\bip|\bhost(?:name)?|\bserver|\baddress|\baddr|\bssh|\bping|\bconnect(?:ed|ing)?|\bgateway|\bdns"
    r"|\bproxy|\bfrom|\bto|\bat|\bvia|\bon|\bnode|\bpeer|\bclient|//|@)\W{0,3}$"
)
_PRODUCT_NAME = re.compile(r"\b[A-Z][\w+#-]*\s$")
_IPV6_ANCHOR = re.compile(r":[0-9A-Fa-f]{0,4}:")
_KEPT_IPS = {"127.0.0.1", "0.0.0.0", "255.255.255.255", "::1", "::"}

_PHONE = re.compile(
    r"(?<![\w.:/+#=-])(?:\+|00)?\(?\d[\d\s().-]{5,24}\d(?:\s*(?:x|ext\.?|#)\s*\d{1,6})?(?![\w]|[.:/-]\w)"
)
_PHONE_EXTENSION = re.compile(r"\s*(?:x|ext\.?|#)\s*\d{1,6}$")
_DATE_LIKE = re.compile(r"^\d{1,4}([./-])\d{1,2}\1\d{1,4}$|^\d{4}-\d{2}-\d{2}|^\d{1,2}[:.]\d{2}$")
_NOT_PHONE_CUE = re.compile(
    r"(?i)(?:order|invoice|ref(?:erence)?|isbn(?:-1[03])?|tracking|ticket|case|po|sku|account|acct|id|no\.|#)"
    r"\s*(?:number|no\.?|#)?\s*[:=]?\s*$"
)
# Runs of digits long enough to hold a phone, card, SSN or IPv4 address; every numeric detector starts near one.
_NUMERIC_RUN = re.compile(r"[0-9][0-9 ().+/-]{5,}")
_WHITESPACE = re.compile(r"\s")
_DOTTED_PHONE = re.compile(r"\d{3}\.\d{3}\.\d{4}|\d{2}(?:\.\d{2}){4}")
_UNIX_TIME = re.compile(r"1\d{9}(?:\d{3})?")
_SEPARATORS = re.compile(r"[\s().-]+")


# --- the engine ----------------------------------------------------------------------------------


class Redactor:
    """Find and replace PII and secrets. Stateless apart from its region list; safe to share."""

    def __init__(self, regions: Iterable[str] = DEFAULT_REGIONS):
        self.regions = tuple(regions)

    def find(self, text: str) -> list[Finding]:
        """Non-overlapping findings, in text order."""
        candidates = [
            *self._private_keys(text),
            *self._jwts(text),
            *self._urls(text),
            *self._provider_keys(text),
            *self._assignments(text),
            *self._emails(text),
            *self._ipv6(text),
        ]
        runs = [(m.start(), m.end()) for m in _NUMERIC_RUN.finditer(text)]
        # An IBAN's country code and bank code come before its first long digit run; the rest start
        # at a run (phones up to two characters before it: `+`, `00`, `(`) and may end 12 after it.
        for lo, hi in _merge_windows((max(0, start - 40), end) for start, end in runs):
            candidates += self._ibans(text, lo, hi)
        for lo, hi in _merge_windows((max(0, start - 2), end + 12) for start, end in runs):
            candidates += self._cards(text, lo, hi)
            candidates += self._ssns(text, lo, hi)
            candidates += self._ipv4(text, lo, hi)
            candidates += self._phones(text, lo, hi)
        return _resolve_overlaps(candidates)

    def redact(self, text: str) -> Redaction:
        return _apply(text, self.find(text))

    def find_many(self, texts: list[str]) -> list[list[Finding]]:
        """Findings for each text, scanning them joined in large blocks.

        Joining amortises the per-call cost of every anchor search over many messages, which is what
        makes the export fast. The separator starts with a newline and holds a NUL, which no pattern
        crosses; a text that itself holds a NUL is scanned on its own.
        """
        results: list[list[Finding]] = [[] for _ in texts]
        block: list[int] = []
        size = 0
        for index, text in enumerate(texts):
            if _SEPARATOR in text or "\x00" in text:
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
        position = 0
        for finding in self.find(joined):
            while position + 1 < len(starts) and finding.start >= starts[position + 1]:
                position += 1
            base = starts[position]
            results[block[position]].append(Finding(finding.start - base, finding.end - base, finding.label))

    # Each detector returns candidate findings; validation happens here, overlaps are resolved later.
    # Detectors look only near cheap anchors (a key prefix, "@", "://", a run of digits), found with
    # str.find or a regex that starts with a character class: both scan at C speed.

    def _private_keys(self, text: str) -> list[Finding]:
        return [
            Finding(m.start(), m.end(), "PRIVATE_KEY")
            for pos in _occurrences(text, "-----BEGIN")
            if (m := _PRIVATE_KEY.match(text, pos))
        ]

    def _jwts(self, text: str) -> list[Finding]:
        return [Finding(m.start(), m.end(), "JWT") for pos in _occurrences(text, "eyJ") if (m := _JWT.match(text, pos))]

    def _urls(self, text: str) -> list[Finding]:
        found = []
        for lo, hi in _merge_windows((pos - 25, _next_space(text, pos)) for pos in _occurrences(text, "://")):
            for match in _URL.finditer(text, max(0, lo), hi):
                url = match.group().rstrip(_URL_TRAILING)
                start = match.start()
                credentials = _USERINFO.match(url)
                if credentials and credentials.group("scheme").lower() in _DB_SCHEMES:
                    if not _is_placeholder(credentials.group("password")):
                        found.append(Finding(start + credentials.start("password"),
                                             start + credentials.end("password"), "PASSWORD"))  # fmt: skip
                elif (credentials and not _is_placeholder(credentials.group("password"))) or _url_has_token(url):
                    found.append(Finding(start, start + len(url), "URL_WITH_TOKEN"))
        return found

    def _provider_keys(self, text: str) -> list[Finding]:
        found = []
        for prefixes, pattern in _PROVIDER_KEYS:
            for prefix in prefixes:
                for pos in _occurrences(text, prefix):
                    match = pattern.match(text, pos)
                    if match and _looks_random(match.group()):
                        found.append(Finding(match.start(), match.end(), "API_KEY"))
        return found

    def _assignments(self, text: str) -> list[Finding]:
        lowered = text.lower()
        anchors = [m.start() for m in _ASSIGNMENT_ANCHOR.finditer(lowered)]
        anchors += _occurrences(lowered, "bearer")
        lines = _merge_windows((text.rfind("\n", 0, pos) + 1, _line_end(text, pos)) for pos in anchors)
        found = []
        for lo, hi in lines:
            for match in _ASSIGNMENT.finditer(text, lo, hi):
                group = "dq" if match.group("dq") else "sq" if match.group("sq") else "bare"
                start, value = match.start(group), match.group(group)
                # `f(password=pw)`: without the call's closing bracket the value is a variable, not a secret.
                unbracketed = value.rstrip(")]}") if group == "bare" else value
                if _is_placeholder(unbracketed) or _looks_like_code(unbracketed):
                    continue
                if _PASSWORD_NAME.search(match.group("name")):
                    found.append(Finding(start, start + len(value), "PASSWORD"))
                elif _high_entropy(value):
                    found.append(Finding(start, start + len(value), "API_KEY"))
            found += [
                Finding(m.start("value"), m.end("value"), "API_KEY")
                for m in _BEARER.finditer(text, lo, hi)
                if _high_entropy(m.group("value"))
            ]
        return found

    def _emails(self, text: str) -> list[Finding]:
        found = []
        for lo, hi in _merge_windows((pos - 64, pos + 256) for pos in _occurrences(text, "@")):
            for match in _EMAIL.finditer(text, max(0, lo), hi):
                after = text[match.end() : match.end() + 2]
                if after[:1] == ":" and after[1:] not in ("", " ", "\n", "\t"):
                    continue  # an SSH remote such as git@github.com:org/repo.git
                found.append(Finding(match.start(), match.end(), "EMAIL"))
        return found

    def _ibans(self, text: str, lo: int, hi: int) -> list[Finding]:
        # Every IBAN holds a long run of digits, so the numeric windows contain them all.
        found = []
        for match in _IBAN.finditer(text, lo, hi):
            compact = match.group().replace(" ", "")
            if _IBAN_LENGTHS.get(compact[:2]) == len(compact) and _iban_checksum_ok(compact):
                found.append(Finding(match.start(), match.end(), "IBAN"))
        return found

    def _cards(self, text: str, lo: int, hi: int) -> list[Finding]:
        found = []
        for match in _CARD.finditer(text, lo, hi):
            raw = match.group()
            digits = raw.replace(" ", "").replace("-", "")
            if _card_grouping_ok(raw) and _card_prefix_ok(digits) and _luhn_ok(digits):
                found.append(Finding(match.start(), match.end(), "CREDIT_CARD"))
        return found

    def _ssns(self, text: str, lo: int, hi: int) -> list[Finding]:
        found = [Finding(m.start(), m.end(), "SSN") for m in _SSN.finditer(text, lo, hi) if _ssn_ok(*m.groups())]
        context = text[max(0, lo - 40) : hi].lower()
        if "ssn" in context or "social security" in context:
            for match in _SSN_PLAIN.finditer(text, lo, hi):
                if _ssn_ok(*match.groups()) and _SSN_CONTEXT.search(text[max(0, match.start() - 40) : match.start()]):
                    found.append(Finding(match.start(), match.end(), "SSN"))
        return found

    def _ipv4(self, text: str, lo: int, hi: int) -> list[Finding]:
        found = []
        for match in _IPV4.finditer(text, lo, hi):
            address = match.group()
            if not _valid_ipv4(address) or address in _KEPT_IPS or address.startswith("255."):
                continue
            if _is_version_context(text[max(0, match.start() - 30) : match.start()]):
                continue
            found.append(Finding(match.start(), match.end(), "IP_ADDRESS"))
        return found

    def _ipv6(self, text: str) -> list[Finding]:
        anchors = [m.start() for m in _IPV6_ANCHOR.finditer(text)]
        found = []
        for match in (
            m
            for lo, hi in _merge_windows((max(0, a - 40), a + 45) for a in anchors)
            for m in _IPV6.finditer(text, lo, hi)
        ):
            address = match.group()
            if address in _KEPT_IPS or not any(ch.isdigit() for ch in address) or address.count(":") < 2:
                continue
            try:
                ipaddress.IPv6Address(address.split("%")[0])
            except ValueError:
                continue
            found.append(Finding(match.start(), match.end(), "IP_ADDRESS"))
        return found

    def _phones(self, text: str, lo: int, hi: int) -> list[Finding]:
        found = []
        for match in _PHONE.finditer(text, lo, hi):
            candidate, start = match.group(), match.start()
            before = text[max(0, start - 24) : start]
            # The candidate class allows spaces, so a following number can be glued on: drop trailing
            # space-separated groups until the rest validates.
            while candidate:
                if self._is_phone(candidate, before):
                    found.append(Finding(start, start + len(candidate), "PHONE"))
                    break
                trimmed = re.sub(r"\s+\S+$", "", candidate)
                if trimmed == candidate:
                    break
                candidate = trimmed
        return found

    def _is_phone(self, candidate: str, before: str) -> bool:
        core = _PHONE_EXTENSION.sub("", candidate).strip()
        digits = sum(ch.isdigit() for ch in core)
        if not 7 <= digits <= 15 or _DATE_LIKE.search(core) or _NOT_PHONE_CUE.search(before):
            return False
        if _looks_like_version_or_decimal(core):
            return False
        if core.startswith(("+", "00")):
            number = "+" + core[2:] if core.startswith("00") else core
            return _valid_international(number)
        if not _SEPARATORS.search(core) and (digits < 10 or _UNIX_TIME.fullmatch(core)):
            return False  # a bare run of digits that is short or a Unix timestamp is not a phone number
        national = re.sub(r"\D", "", core)
        return any(_valid_national(national, region) for region in self.regions)


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


def _occurrences(text: str, needle: str) -> Iterator[int]:
    pos = text.find(needle)
    while pos != -1:
        yield pos
        pos = text.find(needle, pos + 1)


def _next_space(text: str, pos: int) -> int:
    match = _WHITESPACE.search(text, pos)
    return match.start() if match else len(text)


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end == -1 else end


def _merge_windows(windows: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for lo, hi in sorted(windows):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def _resolve_overlaps(candidates: list[Finding]) -> list[Finding]:
    """Keep the highest-priority finding where candidates overlap (then the earliest, then the longest)."""
    starts: list[int] = []
    chosen: list[Finding] = []
    for finding in sorted(candidates, key=lambda f: (-_PRIORITY[f.label], f.start, f.start - f.end)):
        index = bisect.bisect_right(starts, finding.start)
        if index > 0 and chosen[index - 1].end > finding.start:
            continue
        if index < len(chosen) and chosen[index].start < finding.end:
            continue
        starts.insert(index, finding.start)
        chosen.insert(index, finding)
    return chosen


# --- validators ----------------------------------------------------------------------------------


def _is_placeholder(value: str) -> bool:
    stripped = value.strip("\"'<>{}[]()$%")
    lowered = stripped.lower()
    if len(set(stripped.replace("-", "").replace("_", ""))) <= 2:
        return True  # xxxx, ****, 0000
    if (
        re.fullmatch(r"\$\{[^}]+\}|\$[A-Z_][A-Z0-9_]*|\$[a-z_][a-z0-9_]*|<[^>]*>?|\{\{.*", value)
        or (value.startswith("%") and value.endswith("%"))
        or lowered
        in {
            "none",
            "null",
            "nil",
            "true",
            "false",
            "undefined",
            "redacted",
            "changeme_placeholder",
            "your_password",
            "your-password",
            "yourpassword",
            "password",
            "secret",
            "token",
            "example",
            "str",
            "string",
            "int",
            "bool",
            "optional",
            "required",
        }
    ):
        return True
    return lowered.startswith(("your_", "your-", "xxx", "example", "placeholder", "dummy", "<"))


def _looks_like_code(value: str) -> bool:
    # Calls, subscripts, dotted references (os.environ, settings.DB_PASSWORD) and variables named after the
    # secret they hold (db_password, api_token) are code, not secrets.
    if re.fullmatch(r"[A-Za-z_][\w.]*(?:\(.*\)|\[.*\])", value) or re.fullmatch(
        r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+", value
    ):
        return True
    return bool(re.fullmatch(r"[a-z_][a-z0-9_]*", value)) and any(
        w in value for w in ("pass", "pw", "secret", "token", "key")
    )


def _shannon_entropy(value: str) -> float:
    counts = Counter(value)
    total = len(value)
    return -sum(c / total * math.log2(c / total) for c in counts.values())


def _high_entropy(value: str) -> bool:
    if len(value) < 16:
        return False
    classes = sum((any(c.islower() for c in value), any(c.isupper() for c in value), any(c.isdigit() for c in value)))
    return classes >= 2 and _shannon_entropy(value) >= 3.2


def _looks_random(key: str) -> bool:
    body = re.sub(r"^(?:sk-(?:ant-|proj-|svcacct-|admin-)?|[a-z]+_(?:pat_|live_|test_)?|glpat-|xox[a-z]-)", "", key)
    return len(set(body)) >= 8 and not _is_placeholder(body)


def _url_has_token(url: str) -> bool:
    lowered = url.lower()
    if any(host in lowered for host in _TOKEN_PATH_HOSTS):
        return True
    if "?" not in url and "#" not in url:
        return False
    query = re.split(r"[?#]", url, maxsplit=1)[1]
    for pair in re.split(r"[&;#]", query):
        name, _, value = pair.partition("=")
        if name.lower() in _URL_SECRET_PARAMS and value and not _is_placeholder(value):
            return True
    return False


def _iban_checksum_ok(iban: str) -> bool:
    rearranged = iban[4:] + iban[:4]
    try:
        number = int("".join(str(int(ch, 36)) for ch in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
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


def _card_grouping_ok(raw: str) -> bool:
    # Cards are written as one run or in groups split by one kind of separator; 3-7-7 order numbers are not.
    groups = re.split(r"[ -]", raw)
    if len(groups) == 1:
        return True
    if len({sep for sep in raw if sep in " -"}) > 1:
        return False
    return len(groups[0]) == 4 and all(1 <= len(group) <= 6 for group in groups[1:])


def _ssn_ok(area: str, group: str, serial: str) -> bool:
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


def _is_version_context(before: str) -> bool:
    """A version cue (`v`, `version`, `upgrade to`, `==`) or a product name (`Python 7.7.19.3`) precedes."""
    if _VERSION_CUE.search(before):
        return True
    return not _IP_CUE.search(before) and bool(_PRODUCT_NAME.search(before))


def _valid_ipv4(address: str) -> bool:
    parts = address.split(".")
    return all(part == "0" or (not part.startswith("0") and int(part) <= 255) for part in parts)


def _looks_like_version_or_decimal(core: str) -> bool:
    # 3.11.7, 1.250.000, 12.99, 192.168.10.200: numbers split by dots alone are versions, amounts, decimals
    # or addresses, except the dotted phone styles 541.325.2427 (US) and 06.12.34.56.78 (FR).
    dotted_only = "." in core and not re.search(r"[\s()-]", core) and not core.startswith(("+", "00"))
    return dotted_only and not _DOTTED_PHONE.fullmatch(core)


@dataclass(frozen=True)
class _NumberingPlan:
    """The parts of phonenumbers' metadata for one region that a cheap pre-check needs."""

    national_prefix: str
    lengths: frozenset[int]
    pattern: re.Pattern[str]


@cache
def _numbering_plan(region: str) -> _NumberingPlan | None:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.general_desc is None or not metadata.general_desc.national_number_pattern:
        return None
    return _NumberingPlan(
        metadata.national_prefix or "",
        frozenset(metadata.general_desc.possible_length or ()),
        re.compile(metadata.general_desc.national_number_pattern),
    )


def _valid_national(digits: str, region: str) -> bool:
    """Valid in `region` by phonenumbers' metadata: a possible length and the national number pattern.

    This is the check `phonenumbers.is_valid_number` makes, done on precompiled patterns because a
    full parse per candidate would dominate the export's time.
    """
    plan = _numbering_plan(region)
    if plan is None:
        return False
    variants = [digits]
    if plan.national_prefix and digits.startswith(plan.national_prefix):
        variants.append(digits[len(plan.national_prefix) :])
    return any(len(v) in plan.lengths and plan.pattern.fullmatch(v) for v in variants)


def _valid_international(number: str) -> bool:
    digits = re.sub(r"\D", "", number)
    for size in (1, 2, 3):
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:size]) if digits[:size] else -1)
        if regions:
            return any(_valid_national(digits[size:], region) for region in regions if region != "001")
    return False


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
