"""The engine: `Redactor` scans a text (or a batch, joined in blocks), runs each detector at its anchors,
resolves overlaps by priority and replaces what it found with `[LABEL]`.
"""

from __future__ import annotations

import bisect
import gc
import ipaddress
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from milton_lora.redact.anchors import _ANCHORS, _Anchors
from milton_lora.redact.patterns import (
    _ASSIGNED_VALUE,
    _BEARER,
    _BLOCK_CHARS,
    _CARD,
    _CHARACTER_CLASSES,
    _DATE_LIKE,
    _DB_SCHEMES,
    _EMAIL_DOMAIN,
    _EMAIL_LOCAL,
    _IBAN_BY_LENGTH,
    _IBAN_LENGTHS,
    _IBAN_START,
    _IPV4,
    _IPV6,
    _IPV6_CHARS_AFTER,
    _IPV6_CHARS_BEFORE,
    _IPV6_GROUPS,
    _JWT,
    _KEPT_IPS,
    _LAST_GROUP,
    _LOCAL_PART_CHARS,
    _NON_DIGITS,
    _NOT_PHONE_CUE,
    _NUMERIC_RUN,
    _PHONE,
    _PHONE_CUE,
    _PHONE_EXTENSION,
    _PHONE_START,
    _PRIORITY,
    _PRIVATE_KEY,
    _SCHEME_CHARS,
    _SEPARATOR,
    _SEPARATORS,
    _SSN,
    _SSN_CONTEXT,
    _SSN_PLAIN,
    _UNIX_TIME,
    _URL_REST,
    _URL_SCHEME,
    _URL_TRAILING,
    _USERINFO,
    _WORD_CHARS,
    DEFAULT_REGIONS,
    Finding,
    Redaction,
    _backwards,
    _Span,
)
from milton_lora.redact.validators import (
    _card_grouping_ok,
    _card_prefix_ok,
    _high_entropy,
    _iban_checksum_ok,
    _is_placeholder,
    _is_version_context,
    _looks_like_code,
    _looks_like_version_or_decimal,
    _looks_random,
    _luhn_ok,
    _national_number_pattern,
    _ssn_ok,
    _url_has_token,
    _valid_international,
    _valid_ipv4,
)


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


_DEFAULT = Redactor()


def redact_text(text: str) -> str:
    """Redact with the default engine (the export's settings)."""
    return _DEFAULT.redact(text).text
