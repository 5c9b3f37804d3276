"""Numbers: IBANs, cards, US social security numbers, IPv4 addresses and phone numbers, each looked for only in
runs of digits and separators that can hold one (an IBAN where the anchor pass found a country code and two
digits), and each validated with its context.

Numbers are found as runs on a byte-class copy of the text (one byte per character: digits `0`, capitals
`A`, lower case `a`, the separators numbers are written with `.`, anything else a space), where literal
searches run at memchr speed; a run is handed only to the detectors its digit count allows (cards need
13 digits, SSNs 9, phones 7; IPv4 needs three dots).
"""

from __future__ import annotations

import bisect
import re

from milton_lora.redact import cues
from milton_lora.redact.labels import Span
from milton_lora.redact.national import in_numeric_run, itin_ok
from milton_lora.redact.validators import (
    card_grouping_ok,
    card_prefix_ok,
    gtin_ok,
    iban_checksum_ok,
    kept_ipv4,
    luhn_ok,
    national_number_pattern,
    possible_international,
    ssn_ok,
    unprefixed_mobile_pattern,
    valid_international,
    valid_ipv4,
)

CHARACTER_CLASSES = bytes(
    ord("0") if char.isdigit() else ord("A") if char.isupper() else ord("a") if char.islower()
    else ord(".") if char in " ().+/-" else ord(" ")
    for char in map(chr, range(128))
) + b" " * 128  # fmt: skip
# Runs of digits and separators long enough to hold a phone, card, SSN or IPv4 address: `[0-9][0-9 ().+/-]{5,}`.
_NUMERIC_RUN = re.compile(rb"0[0.]{5,}")

# The IBAN registry's length per country; an IBAN is read to exactly that length (single spaces allowed
# between characters) and the mod-97 check then decides, so one glued to the next word is still caught.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29,
    "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    "YE": 30,
}  # fmt: skip
_IBAN_BY_LENGTH = {
    length: re.compile(rf"[A-Z]{{2}}\d{{2}}(?: ?[A-Z0-9]){{{length - 4}}}") for length in set(IBAN_LENGTHS.values())
}

# Patterns scanned over a stretch of text start with a character class and check the character before
# their first one in a lookbehind placed after it: a pattern that opens with a lookbehind is tried at
# every position, one that opens with a class skips ahead at C speed.
# A card number stands alone: not inside a name (`IMG_4532015112830366.jpg`, `report_4111...pdf`).
_CARD = re.compile(r"\d(?<![\w.+-]\d)(?:[ -]?\d){12,18}(?![\w-]|\.\w)")
_CARD_CUE = re.compile(r"(?i)card|visa|mastercard|amex|\bcc\b|kreditkarte|carte")
_SSN = re.compile(r"(\d(?<![\d-]\d)\d\d)-(\d{2})-(\d{4})(?![\d-])")
# After an SSN cue, also written without dashes or with them misplaced (`078051120`, `078-051120`, `07805-1120`).
_SSN_PLAIN = re.compile(r"(\d(?<![\d-]\d)\d\d)[ -]?(\d{2})[ -]?(\d{4})(?![\d-])")
_SSN_CUE_REACH = 60
# Between two numbers of a list written for a reader: `, `, ` or `, ` / `, a space. A joiner without a space
# (`;`, `,` in a CSV row) separates columns, whose next value is no phone number or SSN for being there.
_LIST_JOINER = re.compile(r"[^\S\n]*(?:[,/&]|and|or)[^\S\n]+|[^\S\n]+")
# `123-45-6789` on the byte-class copy: a run without it holds no SSN unless a cue allows one without dashes.
_SSN_SHAPE = b"000.00.0000"
_IPV4 = re.compile(r"\d(?<![\w.]\d)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?![\w]|\.\d)")
_PRODUCT_NAME = re.compile(r"[A-Z](?<!\w[A-Z])[\w+#-]*\s$")
_JOINER_ENDS = frozenset("sdron>→,/&")  # the last character of each joiner below
# Read on the reversed text before a number: a joiner (`vs`, `to`, `and`, `,`) after another dotted number.
_PREVIOUS_DOTTED = re.compile(r"\s*(?:\.?sv|susrev|dna|ro|ot|naht|revo|>-|→|,|/|&)\s*\d+(?:\.\d+){2,}(?![\d.])")

_PHONE = re.compile(
    r"(?<![\w./+#-])(?<!\d:)(?:(?:\+|00)?\(?\d[\d\s().-]{5,24}\d|0\d{1,5}/\d[\d -]{2,14}\d)"
    r"(?:\s*(?:x|ext\.?|#)\s*\d{1,6})?(?![\w]|[.:/-]\w)"
)
# Where a phone number can start: the opening of `_PHONE`, up to its first digit.
_PHONE_START = re.compile(r"(?<![\w./+#-])(?<!\d:)(?:\+|00)?\(?\d")
_AREA_CODE = re.compile(r"\(\d{1,5}\)")
_PHONE_EXTENSION = re.compile(r"\s*(?:x|ext\.?|#)\s*\d{1,6}$")
_DATE_LIKE = re.compile(r"\d{1,4}([./-])\d{1,2}\1\d{1,4}$|\d{4}-\d{2}-\d{2}|\d{1,2}[:.]\d{2}$")  # used with match
_ZIP_PLUS_4 = re.compile(r"\d{5}-\d{4}")
_ISBN_13 = re.compile(r"97[89][- ]?(?:\d[- ]?){9}\d")
_DOTTED_PHONE = re.compile(r"\d{3}\.\d{3}\.\d{4}|\d{2}(?:\.\d{2}){4}")
_NON_DOT_SEPARATOR = re.compile(r"[\s()/-]")
_UNIX_TIME = re.compile(r"1\d{9}(?:\d{3})?")
_SEPARATORS = re.compile(r"[\s()./-]+")
_OPERATORS = frozenset("-+*/×÷^%=")
# Read on the reversed text before a number: an operator after a number or bracket, or a multiplication sign.
_OPERATOR_BEFORE = re.compile(r"[^\S\n]*(?:[-+*/×÷^%=][^\S\n]*[\d)]|[*×÷^])")
_OPERATOR_AFTER = re.compile(r"[^\S\n]*(?:[=*×÷^%]|[/+][^\S\n]*\d{1,4}(?![\d ]*\d))")
# Read on the reversed, lower-cased text before a number: `"key": "` or `key=` (the key comes out reversed).
_KEY_BEFORE = re.compile(r"[\"']?[^\S\n]*[:=][^\S\n]*[\"']?(?P<key>[\w.-]*[a-z_])")
# The key alone, exactly, for the words that also end id names (`order_number`, `Kundennummer`, `numero_pedido`).
_PHONE_KEY = re.compile(
    r"enohp|let|elibom|llec|xaf|stahw|ndsism|tcatnoc|ydnah|\A(?:rebmun|mun|remmun|oremun|orémun|oremún)\Z"
)
# A key of code or data, read reversed (`"client_id": "`, `user.count=`, `max_len: `), or one naming an id
# (`ref:`, `Kundennr:`, `order no:`): quoted, holding `_` or `.`, or ending in an id word. A prose label is neither.
_CODE_OR_ID_KEY = re.compile(
    r"[\"'][^\S\n]*[:=]|[:=][^\S\n]*[\"']|[_.]|[:=][^\S\n]*(?:di|rn|on|mun|fer|edoc|yek|remmun|rebmun)"
)
# Four or more groups of four digits on the byte-class copy (a run starts with a digit).
_DIGIT_GROUPS = re.compile(rb"0000(?:\.0000){3,}(?![0.]0)")
# Two groups of digits joined by a dash, no trunk prefix or bracket: a phone number, a difference or a range.
_TWO_GROUPS = re.compile(r"([1-9]\d{2,4})([^\S\n]*-[^\S\n]*)(\d{2,5})")
_WORD_CHARS = re.compile(r"\w*")
_NON_DIGITS = re.compile(r"\D")
_YEARS = re.compile(r"(?:(?:19|20)\d\d[\s,]*)+")
# A phone candidate's verdict: refused, accepted by its form (numbering plan, `+`, a phone key), or only by a cue.
_REFUSED, _BY_CUE, _BY_FORM = 0, 1, 2


class NumberFinder:
    """Cards, SSNs, IPv4 addresses and phone numbers in the numeric runs of a text, with IBANs found apart."""

    def __init__(self, regions: tuple[str, ...]):
        self._national = national_number_pattern(regions)
        self._unprefixed_mobile = unprefixed_mobile_pattern(regions)

    def find(self, text: str, classes: bytes, ibans: list[Span], ssn_cues: list[int]) -> list[Span]:
        """PHONE has the lowest priority, so a run whose digits all lie inside a card, SSN, IP address or IBAN
        (`ibans`, in text order) is not searched for phone numbers. An SSN written without dashes is looked
        for only shortly after one of `ssn_cues` (positions of `SSN`, `social security`).
        """
        found: list[Span] = []
        next_iban = 0
        last_ssn_end = -1
        last_phone: Span | None = None
        count_in_classes, count_in_text = classes.count, text.count  # bound once: this loop runs per number
        for run in _NUMERIC_RUN.finditer(classes):
            start, end = run.span()
            digits = count_in_classes(b"0", start, end)
            # A run ends before a character outside it, which the detectors' trailing lookaheads must see.
            context_end = end + 2
            taken = ipv4(text, start, context_end) if digits >= 4 and count_in_text(".", start, end) >= 3 else []
            if (digits == 6 or digits == 10) and (identity := in_numeric_run(text, classes, start)):
                found.append(identity)  # `AB 12 34 56 C`, `131052-3087`
                continue
            if digits < 7:
                found += taken
                continue
            while next_iban < len(ibans) and ibans[next_iban][1] <= start:
                next_iban += 1
            iban = ibans[next_iban] if next_iban < len(ibans) and ibans[next_iban][0] < end else None
            if iban is not None and iban[0] <= start and iban[1] > classes.rfind(b"0", start, end):
                found += taken  # the run's digits are the IBAN's (which outranks a card, SSN or phone in them)
                continue
            if digits >= 13:
                taken += cards(text, start, context_end)
            if digits >= 9:
                cue = bisect.bisect_left(ssn_cues, start - _SSN_CUE_REACH)
                cued = cue < len(ssn_cues) and ssn_cues[cue] < end
                if cued or classes.find(_SSN_SHAPE, start, end) != -1:
                    found_ssns = ssns(text, start, context_end, cued=cued, listed_after=last_ssn_end)
                    if found_ssns:
                        last_ssn_end = found_ssns[-1][1]
                        taken += found_ssns
            found += taken
            if iban is not None:
                taken.append(iban)
            last_digit = classes.rfind(b"0", start, end)
            if digits >= 16 and _DIGIT_GROUPS.match(classes, start):
                continue  # `6493 8938 5186 4296`: an account or reference number in groups of four, no phone numbers
            if not (taken and any(f[0] <= start and f[1] > last_digit for f in taken)):
                phones = self._phones(text, start, last_digit + 1, taken, last_phone)
                if phones:
                    last_phone = phones[-1]
                    found += phones
        return found

    def _phones(
        self, text: str, run_start: int, digits_end: int, taken: list[Span], previous: Span | None
    ) -> list[Span]:
        """Phone numbers that start in a run of digits, skipping candidates that overlap a finding `taken` there.

        A number may start two characters before its run (`+(`) and run past its last digit (`x 12`, a
        tab). Starts are looked for within the run only; each candidate is then matched against the text
        that follows, far enough and never ending inside a word, so the pattern's lookahead sees the real
        text. Candidates starting after the run are left to the next run.
        """
        found: list[Span] = []
        hi = 0  # how far candidates are read, found at the first start (a run of a hash or a key holds none)
        position = max(0, run_start - 2)
        while begin := _PHONE_START.search(text, position, digits_end):
            hi = hi or _WORD_CHARS.match(text, digits_end + 32).end() + 2
            match = _PHONE.match(text, begin.start(), hi)
            if match is None:
                position = begin.start() + 1
                continue
            position = match.end()
            if taken and any(f[0] < match.end() and match.start() < f[1] for f in taken):
                continue
            if text[match.start()] == "(" and _AREA_CODE.match(text, match.start(), match.end()) is None:
                # `(07700 900123)`: the bracket opens a remark, it encloses no area code; it stays in the text.
                position = match.start() + 1
                continue
            # The next number of a list (`call 22 12 34 56 or 22 98 76 54`) shares the cue of the first.
            listed = previous is not None and _continues_list(text, previous, match.start(), match.group())
            if phone := self._longest_valid_phone(text, match, listed):
                found.append(phone)
                position = phone[1]  # the next number of a list gets its own try
                previous = phone
        return found

    def _longest_valid_phone(self, text: str, match: re.Match[str], listed: bool) -> Span | None:
        """The candidate class allows spaces, so the next number of a list can be glued on: trailing
        space-separated groups are dropped until the rest validates.

        Where several lengths validate, the longest one that leaves a whole number (or nothing) behind wins:
        `0151 2345678 0171 2345678` is two German numbers, although a variable-length plan also accepts
        `0151 2345678 0171`, which would leave `2345678` in the text. A length that only a phone cue accepts
        gives way to one that a numbering plan accepts.
        """
        candidate, start = match.group(), match.start()
        match_end = match.end()
        accepted = cued = 0
        while candidate:
            end = start + len(candidate)
            verdict = self._phone_verdict(candidate, text, start, listed)
            if verdict == _BY_FORM:
                if end == match_end or self._leaves_a_number(text, end, match_end):
                    return (start, end, "PHONE")
                accepted = accepted or end
            elif verdict == _BY_CUE:
                cued = cued or end
            # The last group and the space before it off: a candidate starts and ends with no space (`\s` is `isspace`).
            head = candidate.rsplit(None, 1)
            if len(head) == 1:
                break
            candidate = head[0]
        end = accepted or cued
        return (start, end, "PHONE") if end else None

    def _leaves_a_number(self, text: str, end: int, match_end: int) -> bool:
        rest = text[end:match_end]
        rest_start = end + len(rest) - len(rest.lstrip())
        return self._phone_verdict(text[rest_start:match_end], text, rest_start, False) == _BY_FORM

    def _phone_verdict(self, candidate: str, text: str, start: int, listed: bool) -> int:
        has_extension = "x" in candidate or "#" in candidate
        core = (_PHONE_EXTENSION.sub("", candidate) if has_extension else candidate).strip()
        international = core[:1] == "+" or core[:2] == "00"
        # `+44 (0)20 7946 0958`: the trunk prefix in brackets is not dialled from abroad.
        national = _NON_DIGITS.sub("", core.replace("(0)", "") if international else core)
        if not 7 <= len(national) <= 15 or _DATE_LIKE.match(core) or _version_or_decimal(core):
            return _REFUSED
        before = cues.backwards(text[max(0, start - 32) : start])
        verdict = self._accepted(core, national, before, listed)
        # What refuses a number around it (`invoice `, `= ?`) is read only for a number that would be accepted.
        if verdict and _context_refuses(text, start + len(candidate), before):
            return _REFUSED
        if verdict and (pair := _TWO_GROUPS.fullmatch(core)) and _calculation_or_range(pair, before):
            return _REFUSED
        return verdict

    def _accepted(self, core: str, national: str, before: str, listed: bool) -> int:
        """A phone number by its form: `+...`, its key (`"phone": "...`) or its numbering plan (_BY_FORM); or
        only by a cue before it, or before the list it continues (`listed`) (_BY_CUE)."""
        if core[0] == "+":
            return _BY_FORM if possible_international(national) else _REFUSED
        key = _KEY_BEFORE.match(before) if before.lstrip(" \"'")[:1] in (":", "=") else None
        if key is not None:  # `"phone": "..."`, `Mobil: ` are cues; `"client_id": "9622360505"` is an id
            if _PHONE_KEY.search(key.group("key")) is not None or cues.PHONE.ends(before):
                return _BY_FORM
            if _CODE_OR_ID_KEY.search(key.group()):
                return _REFUSED
            # A label of prose (`Dial-in: `, `Kontakt: `, `Urgences : `): the numbering plans decide, as without one.
        # The phone cue (`call me on`) is read only for what the numbering plans alone do not accept.
        if self._valid_uncued(core, national):
            return _BY_FORM
        return _BY_CUE if listed or cues.PHONE.ends(before) else _REFUSED

    def _valid_uncued(self, core: str, national: str) -> bool:
        """Without a cue, a bare run of digits is a phone number only at 10 to 13 digits (15 after `00`) that are
        no Unix time and no barcode, or at nine as a mobile number of a region that dials no trunk prefix (Spain's
        `612345678`); written with separators it must not be a ZIP+4 code or an ISBN."""
        international = core[:2] == "00"
        if not _SEPARATORS.search(core):
            if len(national) == 9 and not international:
                return self._unprefixed_mobile.fullmatch(national) is not None
            if not 10 <= len(national) <= (15 if international else 13) or _UNIX_TIME.fullmatch(core):
                return False
            if len(national) in (12, 13) and gtin_ok(national):
                return False  # an EAN-13 or UPC-A barcode
        elif _ZIP_PLUS_4.fullmatch(core) or (_ISBN_13.fullmatch(core.lstrip("(")) and gtin_ok(national)):
            return False
        # The check digit before the numbering plans: a barcode or ISBN whose digits start with `00` would otherwise
        # compile the plans of the country its next digits name, and the default regions' plans cost more per call.
        if international:  # `0049 30 1234567`: dialled from abroad, validated in its own country
            return valid_international(national[2:])
        return self._national.fullmatch(national) is not None


def _continues_list(text: str, previous: Span, start: int, candidate: str) -> bool:
    """A candidate at `start` is the next number of a list after the phone number `previous`: joined to it (`, `,
    ` or `, a space), with about as many digits, and no run of years (`+44 20 7946 0958, 1000000 downloads` and
    `030 1234567 2019 2020 2021` hold one phone number each)."""
    if _LIST_JOINER.fullmatch(text, previous[1], start) is None or _YEARS.fullmatch(candidate.strip()):
        return False
    return abs(len(_NON_DIGITS.sub("", candidate)) - len(_NON_DIGITS.sub("", text[previous[0] : previous[1]]))) <= 2


def _context_refuses(text: str, end: int, before: str) -> bool:
    """An identifier cue (`invoice `, `order #`) or a calculation (`604-6362 = ?`, `(539) * 330-9638`) around a
    number ending at `end`; `before` is the text before it, `backwards`."""
    if cues.IDENTIFIER.ends(before):
        return True
    # The operators are looked for with a regex only when the next character could be one (the usual case: not).
    if before.lstrip(" \t")[:1] in _OPERATORS and _OPERATOR_BEFORE.match(before):
        return True
    return (
        text[end : end + 3].lstrip(" \t")[:1] in _OPERATORS and _OPERATOR_AFTER.match(text, end, end + 12) is not None
    )


def _calculation_or_range(pair: re.Match[str], before: str) -> bool:
    """Two groups of digits joined by a dash (`1269 - 225`, `4973-179`, `687-7511`) are a difference or a range when
    the dash is spaced, when the second group is the shorter (no phone format splits a number that way), or
    after a word that asks for a calculation or names what a range counts (`what's `, `solve `, `pages `)."""
    first, dash, second = pair.groups()
    return dash != "-" or len(second) < len(first) or cues.CALCULATION.ends(before)


def _version_or_decimal(core: str) -> bool:
    # 3.11.7, 1.250.000, 12.99, 192.168.10.200: numbers split by dots alone are versions, amounts, decimals
    # or addresses, except the dotted phone styles 541.325.2427 (US) and 06.12.34.56.78 (FR).
    dotted_only = "." in core and not _NON_DOT_SEPARATOR.search(core) and not core.startswith(("+", "00"))
    return dotted_only and not _DOTTED_PHONE.fullmatch(core)


def ibans(text: str, classes: bytes, starts: list[int]) -> list[Span]:
    """IBANs at `starts` (where an IBAN country's code and two digits are, in text order), not inside a word."""
    found = []
    for start in starts:
        if start and classes[start - 1] in b"Aa0":
            continue
        match = _IBAN_BY_LENGTH[IBAN_LENGTHS[text[start : start + 2]]].match(text, start)
        if match and iban_checksum_ok(match.group().replace(" ", "")):
            found.append((start, match.end(), "IBAN"))
    return found


def cards(text: str, lo: int, hi: int) -> list[Span]:
    found = []
    for match in _CARD.finditer(text, lo, hi):
        raw = match.group()
        digits = raw.replace(" ", "").replace("-", "")
        if not (card_prefix_ok(digits) and card_grouping_ok(raw) and luhn_ok(digits)):
            continue
        before = text[max(0, match.start() - 30) : match.start()]
        if cues.IDENTIFIER.ends(cues.backwards(before)):
            continue  # invoice 4111-...: an invoice number that happens to pass Luhn
        if len(digits) == 13 and gtin_ok(digits) and not _CARD_CUE.search(before):
            continue  # an EAN-13 barcode
        found.append((match.start(), match.end(), "CREDIT_CARD"))
    return found


def ssns(text: str, lo: int, hi: int, *, cued: bool, listed_after: int = -1) -> list[Span]:
    """SSNs in `text[lo:hi]`: `123-45-6789`, and when `cued`, the forms that need an SSN cue before them. An SSN
    right after the one that ended at `listed_after` (`123456789, 234567890 and ...`) shares its cue."""
    found = []
    if text.find("-", lo, hi) != -1:
        for match in _SSN.finditer(text, lo, hi):
            if ssn_ok(*match.groups()):
                found.append((match.start(), match.end(), "SSN"))
            elif itin_ok(match.group()):
                found.append((match.start(), match.end(), "ID_NUMBER"))  # a US ITIN: the SSN shape, area 9XX
    if cued:
        for match in _SSN_PLAIN.finditer(text, lo, hi):
            if not ssn_ok(*match.groups()):
                continue
            before = text[max(0, match.start() - _SSN_CUE_REACH) : match.start()]
            listed = listed_after >= 0 and _LIST_JOINER.fullmatch(text, listed_after, match.start()) is not None
            if listed or cues.SSN.ends(cues.backwards(before)):
                found.append((match.start(), match.end(), "SSN"))
                listed_after = match.end()
    return found


def ipv4(text: str, lo: int, hi: int) -> list[Span]:
    found = []
    for match in _IPV4.finditer(text, lo, hi):
        address = match.group()
        if not valid_ipv4(address) or kept_ipv4(address) or _is_version(text, match.start()):
            continue
        found.append((match.start(), match.end(), "IP_ADDRESS"))
    return found


def _is_version(text: str, start: int, depth: int = 0) -> bool:
    """A version cue (`v`, `version`, `upgrade to`, `==`, `Chrome/`), a product name (`Python 7.7.19.3`), or the
    second of two numbers joined by `vs`, `to`, `and` whose first is a version."""
    before = text[max(0, start - 60) : start]
    reversed_before = cues.backwards(before)
    if cues.VERSION.ends(reversed_before):
        return True
    if not cues.IP.ends(reversed_before) and _PRODUCT_NAME.search(before[-30:]):
        return True
    joiner = reversed_before.lstrip()[:1]
    previous = _PREVIOUS_DOTTED.match(reversed_before) if depth < 2 and joiner in _JOINER_ENDS else None
    return previous is not None and _is_version(text, start - previous.end(), depth + 1)
