"""Secrets that open something, known by the word before them, all redacted as PASSWORD:

- PINs and numeric codes: `my PIN is 0815`, `door code: 7391#` (the keypad's `#` included), `alarm disarm
  code 1357`, `SIM PUK 12345678`, a card security code (`cvv 123`), a lock combination (`bike lock combo
  4821`, `the safe combination is 12-34-56`);
- two-factor backup and recovery codes, each of a list: `2FA backup code: 48213977`, `recovery codes:
  8f3k-2m9q 7d1x-4p8w`;
- a wallet's seed phrase: `seed phrase: abandon ability able ...` (12 to 24 lower-case words);
- an authenticator app's secret (base32, also in groups of four): `TOTP seed: JBSWY3DPEHPK3PXP`, `2FA secret
  JBSW Y3DP EHPK 3PXP`, `setup key: ...`;
- a user and password given as a pair after a login cue: `Netflix login: jess@example.com / Popcorn2023!`,
  `login for the NAS: admin / Tr0ub4dor&3`, `my Netflix login is jess@example.com / Popcorn2023!`, `log in
  with bob and Qwerty!2024`, `creds are admin Tr0ub4dor&3` (the password must look like one, eight
  characters or a symbol, so `login with Google / OAuth2` stays; joined by a word or a space it must be
  more than a product name, so `sign in with Google and Microsoft365` stays).

`pin` not in capitals needs `is` or `:` before its number (`GPIO pin 1234` is no PIN); `error code`, `zip
code`, `source code` and `combination of` are no cues at all.
"""

from __future__ import annotations

import re

from milton_lora.redact.credentials import password_shaped, strongly_shaped
from milton_lora.redact.cues import COPULAS, stands_alone
from milton_lora.redact.labels import Span
from milton_lora.redact.validators import is_placeholder

CARD_CODE_CUES = ["cvv", "cvv2", "cvc", "cvc2", "csc", "security code"]
COMBINATION_CUES = ["combo", "combination"]
LIST_CUES = ["backup code", "backup codes", "recovery code", "recovery codes"]
SEED_CUES = ["seed phrase", "recovery phrase", "seed words", "mnemonic phrase", "mnemonic seed"]
# Cues said in passing as often as before a secret (`access code 2024 release`, `security code 404 error`):
# the number after them counts only after `is` or `:`.
STATED_ONLY_CUES = ["access code", "entry code", "lock code", "safe code", "unlock code", "security code"]
LOGIN_CUES = ["login", "log-in", "logon", "sign-in", "credentials", "creds", "log in", "sign in", "logged in"]
TOTP_CUES = ["totp seed", "totp secret", "totp key", "otp secret", "2fa secret", "2fa key", "mfa secret",
             "authenticator key", "setup key"]  # fmt: skip
# Each written as a whole word, in lower, UPPER, Title or Sentence case (`PIN`, `Door code`).
CODE_CUES = ["pin", "pincode", "puk", "passcode", "door code", "gate code", "garage code", "alarm code",
             "disarm code", "lock code", "safe code", "keypad code", "entry code", "access code", "unlock code",
             "digicode", "code de la porte", "code porte", "türcode", "torcode", "haustürcode", "código de la puerta",
             "codice del portone", "codice della porta",
             *CARD_CODE_CUES, *COMBINATION_CUES, *LIST_CUES, *SEED_CUES, *LOGIN_CUES, *TOTP_CUES]  # fmt: skip

_BETWEEN = r"[^\S\n]"
# From the end of a cue to its value: `PIN code for the debit card is 4471`, `door code changed: now 2580#`.
_JOINER = rf"""
    (?:[ -](?:code|codes|number|no\.?))?
    (?:{_BETWEEN}+for{_BETWEEN}+(?:(?:the|my|our|your){_BETWEEN}+)?[\w'-]+(?:{_BETWEEN}+[\w'-]+)??)?
    (?P<joiner>(?:{_BETWEEN}+{COPULAS})?(?:{_BETWEEN}+(?:changed|reset|set))?(?:{_BETWEEN}+(?:now|still|just|to))?
      (?:{_BETWEEN}*[:=]{_BETWEEN}*(?:now{_BETWEEN}+)?|{_BETWEEN}+))
    ["'`]?
"""


def _after_joiner(value: str) -> re.Pattern[str]:
    return re.compile(f"(?xi){_JOINER}(?P<value>{value})")


_NUMBER = _after_joiner(r"\d{3,8}[\#*]?(?![\w\#*]|[.,:/-]\d)")
# `12-34-56`, `3-14-27` (a dial lock's numbers) or `4821`.
_COMBINATION = _after_joiner(r"\d{1,2}(?:-\d{1,2}){2,3}(?![\w-])|\d{3,8}(?![\w.,:/-])")
_LOCK_BEFORE = re.compile(r"(?i)\b(?:lock|padlock|locker|safe|bike)\b[^\S\n]*\Z")
_BACKUP_CODE_SHAPE = r"(?:\d{6,10}|[a-z0-9]{4,5}-[a-z0-9]{4,5})(?![\w-])"
_FIRST_BACKUP_CODE = _after_joiner(_BACKUP_CODE_SHAPE)
_NEXT_BACKUP_CODE = re.compile(rf"(?i)[\s,;]+(?P<value>{_BACKUP_CODE_SHAPE})")
_TOTP_SECRET = _after_joiner(r"[A-Z2-7]{16,64}(?![\w-])|[A-Z2-7]{4}(?:[ ][A-Z2-7]{4}){3,15}(?![\w-])")
_SEED_PHRASE = _after_joiner(r"[a-z]{3,8}(?:[ ][a-z]{3,8}){11,23}(?![ ]*[a-z])")
# `login: user / <pw>`, `login for the NAS - admin / <pw>`, `my Netflix login is user / <pw>`, `log in with user
# and <pw>`, `creds are user <pw>`: the joiner before the user, then the separator between user and password.
_LOGIN_PAIR = re.compile(
    rf"""(?x)
    (?:{_BETWEEN}+(?:for|to|on|at|into){_BETWEEN}+[\w .'-]{{1,30}}?)?
    (?:{_BETWEEN}*[:=-]{_BETWEEN}*|{_BETWEEN}+(?:is|are|was|with|as|details[^\S\n]+are){_BETWEEN}*:?{_BETWEEN}+)
    (?P<user>[\w.+-]+(?:@[\w-]+(?:\.[\w-]+)+)?)
    (?:{_BETWEEN}+/{_BETWEEN}+|:|(?P<weak>{_BETWEEN}+(?:and|pw|pass|password){_BETWEEN}+|,{_BETWEEN}+|{_BETWEEN}+))
    (?P<value>[^\s/]{{4,64}}?)[,;]?(?=\s|\Z)
    """
)
_LOWER = re.compile(r"[a-z]")
_YEAR = re.compile(r"(?:19|20)\d\d")
_WORDS = re.compile(r"[a-z]+")
_SEED_LENGTHS = frozenset({12, 15, 18, 21, 24})
# The little words that fill a sentence and that a seed phrase does not hold.
_FILLERS = frozenset(["the", "and", "you", "your", "to", "of", "is", "it", "in", "when", "how", "that", "this", "with",
                      "for", "into", "from", "on", "my", "or", "if"])  # fmt: skip


def secret_codes(text: str, cues: list[tuple[int, int, None]]) -> list[Span]:
    """PASSWORD findings after each cue (`cues`: start, end of each cue word found by the anchor pass)."""
    found: list[Span] = []
    for start, end, _ in cues:
        if not stands_alone(text, start, end):
            continue
        cue = text[start:end]
        kind = cue.lower()
        if kind in LOGIN_CUES:
            found += _login_pair(text, end)
        elif kind in TOTP_CUES:
            found += _totp_secret(text, end)
        elif kind in SEED_CUES:
            found += _seed_phrase(text, end)
        elif kind in LIST_CUES:
            found += _listed_codes(text, end)
        else:
            found += _code(text, end, cue)
    return found


def _code(text: str, end: int, cue: str) -> list[Span]:
    """The number after a PIN, PUK, card or door code cue, or a lock combination (which needs a lock named before
    it: `bike lock combo 4821`, `the safe combination is 12-34-56`, not `combo 1-2-3 punch`)."""
    kind = cue.lower()
    combination = kind in COMBINATION_CUES
    match = (_COMBINATION if combination else _NUMBER).match(text, end)
    if match is None:
        return []
    joiner = match.group("joiner").strip()
    # `pin` in code (`int pin = 1023;`) is a GPIO pin: in lower case only `is` or `:` make it a PIN.
    if kind == "pin" and cue != "PIN" and (not joiner or joiner.endswith("=")):
        return []
    if kind in STATED_ONLY_CUES and not joiner:
        return []
    if combination and not _LOCK_BEFORE.search(text, max(0, end - len(cue) - 24), end - len(cue)):
        return []  # `combo: 4096 tokens`, `combination: 1-2-3 punch`
    value = match.group("value")
    low, high = (3, 4) if kind in CARD_CODE_CUES else (4, 8)
    if "-" not in value and not low <= len(value.rstrip("#*")) <= high:
        return []
    if not joiner and _YEAR.fullmatch(value):
        return []  # `Entry code 2023 was submitted late`
    return _spans(match)


def _totp_secret(text: str, end: int) -> list[Span]:
    """Base32 with one of its digits (2-7) or 24 characters and more: `Setup key STANDARDDEPLOYMENT` is a word."""
    match = _TOTP_SECRET.match(text, end)
    if match is None or not (any(char in "234567" for char in match.group("value")) or len(match.group("value")) >= 24):
        return []
    return _spans(match)


def _seed_phrase(text: str, end: int) -> list[Span]:
    """12, 15, 18, 21 or 24 words (a BIP-39 phrase's lengths) with at most one of the little words that fill a
    sentence: `the recovery phrase is how you get back into your wallet when ...` is prose, not a phrase."""
    match = _SEED_PHRASE.match(text, end)
    if match is None:
        return []
    words = _WORDS.findall(match.group("value").lower())
    if len(words) not in _SEED_LENGTHS or sum(word in _FILLERS for word in words) > 1:
        return []
    return _spans(match)


def _listed_codes(text: str, end: int) -> list[Span]:
    """`recovery codes: 8f3k-2m9q 7d1x-4p8w`: every code of the list (up to 16), each one a finding, after `:`
    or `is`."""
    found: list[Span] = []
    match = _FIRST_BACKUP_CODE.match(text, end)
    if match is not None and not match.group("joiner").strip():
        return []  # `recovery code 1234567 bytes freed`
    while match is not None and any(char.isdigit() for char in match.group("value")) and len(found) < 16:
        found += _spans(match)
        match = _NEXT_BACKUP_CODE.match(text, match.end())
    return found


def _spans(match: re.Match[str] | None) -> list[Span]:
    return [(match.start("value"), match.end("value"), "PASSWORD")] if match else []


def _login_pair(text: str, at: int) -> list[Span]:
    """`login: user / <password>`. A user name has a lower-case letter (`aws creds: AKIA... / <secret>` is a key
    pair, left to the key detectors), and the password is password-shaped with eight characters or a symbol,
    so `SSO login: Okta / SAML2` and `login: Google / OAuth2` name protocols, not secrets. Joined by a word or a
    space instead of `/` (`log in with bob and <pw>`), the password must also hold a symbol, or a capital past
    its first letter and a digit, so `sign in with Google and Microsoft365` stays."""
    match = _LOGIN_PAIR.match(text, at)
    if match is None or not _LOWER.search(match.group("user")):
        return []
    value = match.group("value")
    if not password_shaped(value) or (len(value) < 8 and value.isalnum()) or is_placeholder(value):
        return []
    if match.group("weak") is not None and not strongly_shaped(value):
        return []
    return _spans(match)
