"""A held-out corpus for the kinds of redaction round two: passwords stated in prose, phone numbers without a
cue, IPv6 addresses written in full or IPv4-mapped, cloud secrets in prose, national identity numbers with
checksums, and the look-alikes each of them must leave alone (arithmetic and ranges, order numbers and Unix
times, short git SHAs, hashes inside file names, key names such as `ClearTextPassword`, digit groups of
account-like numbers, the bracket closing around a phone number).

It was written apart from what the engine was tuned on (the tests in `tests/test_redact_*.py` and the tuning
corpus `redact_corpus.py`): its own templates, in English, German, French, Spanish, Italian and Dutch, and
its own seed. Identity numbers are drawn at random until `python-stdnum` accepts them (or, for the formats
it lacks, made with their published check rule); phone numbers until `phonenumbers` calls them valid.

    from redact_corpus_heldout import HELDOUT_SEED, build_heldout_corpus
"""

from __future__ import annotations

import hashlib
import random
import string
from collections.abc import Callable

import phonenumbers
from stdnum import verhoeff
from stdnum.au import tfn
from stdnum.ca import sin
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fi import hetu
from stdnum.in_ import pan
from stdnum.it import codicefiscale
from stdnum.us import itin

from labeled import Builder, Sample

HELDOUT_SEED = 30_2026
HELDOUT_MESSAGES = 3000
_UPPER, _DIGITS = string.ascii_uppercase, string.digits
_WORDS = ["maple", "harbor", "falcon", "copper", "meadow", "lantern", "orbit", "velvet", "cactus", "glacier",
          "pepper", "sunset", "violet", "tundra", "marble", "ember", "willow", "comet"]  # fmt: skip


class Heldout:
    """One message per call of a maker; `rng` decides everything."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    # --- values ------------------------------------------------------------------------------------------

    def password(self) -> str:
        rng = self.rng
        word = rng.choice(_WORDS)
        return rng.choice(
            [
                f"{word.title()}{rng.randint(1990, 2029)}{rng.choice('!?#$*')}",
                f"{word.title()}_{rng.choice(_WORDS).title()}{rng.randint(10, 9999)}",
                "".join(rng.choice(string.ascii_letters + _DIGITS + "!@#%&*") for _ in range(rng.randint(10, 16))),
                f"{rng.choice(_WORDS)}.{rng.choice(_WORDS)}.{rng.randint(1, 99)}",
            ]
        )

    def phone(self) -> tuple[str, str]:
        """A valid number of one of the regions people here live in or call, in a typed format, and its region."""
        rng = self.rng
        region = rng.choice(["US", "GB", "DE", "FR", "ES", "IT", "NL", "CA"])
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        while True:
            national = str(example.national_number)
            national = national[:3] + "".join(rng.choice(_DIGITS) for _ in national[3:])
            number = phonenumbers.parse(national, region)
            if phonenumbers.is_valid_number(number):
                break
        style = rng.randrange(5)
        if region in ("US", "CA"):
            digits = str(number.national_number)
            written = [
                f"({digits[:3]}) {digits[3:6]}-{digits[6:]}",
                f"1-{digits[:3]}-{digits[3:6]}-{digits[6:]}",
                f"001-{digits[:3]}-{digits[3:6]}-{digits[6:]}",
                f"{digits[:3]}.{digits[3:6]}.{digits[6:]}",
                f"+1 {digits[:3]} {digits[3:6]} {digits[6:]}",
            ][style]
        else:
            fmt = [phonenumbers.PhoneNumberFormat.NATIONAL, phonenumbers.PhoneNumberFormat.INTERNATIONAL][style % 2]
            written = phonenumbers.format_number(number, fmt)
            if style == 4:
                written = written.replace(" ", "")
        return written, region

    def ipv6(self) -> str:
        rng = self.rng
        groups = [f"{rng.randrange(65536):04x}" for _ in range(8)]
        groups[0] = rng.choice(["2001", "2a02", "2600", "fe80", "fd12"])
        return rng.choice(
            [
                ":".join(groups),
                ":".join(g.lstrip("0") or "0" for g in groups),
                f"::ffff:{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                f"{groups[0]}:{groups[1]}::{groups[6]}:{groups[7]}".replace(":0000", ":0"),
            ]
        )

    def drawn(self, alphabet_spec: str, valid: Callable[[str], bool]) -> str:
        """Characters drawn per position (`A` a capital, `9` a digit, else itself) until `valid` accepts them."""
        while True:
            value = "".join(
                self.rng.choice(_UPPER) if c == "A" else self.rng.choice(_DIGITS) if c == "9" else c
                for c in alphabet_spec
            )
            if valid(value):
                return value

    def national_id(self) -> tuple[str, str, bool]:
        """(value, the word naming its kind, whether its shape is distinctive enough to be found without it)."""
        rng = self.rng
        kind = rng.randrange(12)
        if kind == 0:
            return self.drawn("99999999A", dni.is_valid), rng.choice(["DNI", "NIF"]), True
        if kind == 1:
            return self.drawn(rng.choice("XYZ") + "9999999A", nie.is_valid), "NIE", True
        if kind == 2:
            return self._codice_fiscale(), "codice fiscale", True
        if kind == 3:
            day, month = rng.randint(1, 28), rng.randint(1, 12)
            base = f"{day:02d}{month:02d}{rng.randint(50, 99)}-{rng.randint(2, 899):03d}"
            value = next(base + c for c in _DIGITS + _UPPER if hetu.is_valid(base + c))
            return value, "HETU", True
        if kind == 4:
            value = self.drawn("AAAPA9999A", pan.is_valid)  # a person's PAN: P, the fourth letter
            return value, "PAN", True
        if kind == 5:
            return self._nino(), rng.choice(["National Insurance number", "NI number", "NINO"]), True
        if kind == 6:
            return self._nric(), rng.choice(["NRIC", "FIN"]), True
        if kind == 7:
            value = self.drawn("9999 9999 9999", lambda v: v[0] in "23456789" and verhoeff.is_valid(v.replace(" ", "")))
            return value, "Aadhaar", False
        if kind == 8:
            value = self.drawn("99999999999", lambda v: v[0] != "0" and idnr.is_valid(v))
            return value, rng.choice(["Steuer-ID", "Steueridentifikationsnummer", "tax ID"]), False
        if kind == 9:
            return self.drawn("9" + "99-99-9999", lambda v: itin.is_valid(v)), "ITIN", True
        if kind == 10:
            return self.drawn("999 999 999", lambda v: v[0] in "1234567" and sin.is_valid(v)), "SIN", False
        return self.drawn("999 999 999", tfn.is_valid), "TFN", False

    def _codice_fiscale(self) -> str:
        while True:
            body = self.drawn("AAAAAA99A99A999", lambda v: True)
            body = body[:8] + self.rng.choice("ABCDEHLMPRST") + body[9:]
            value = body + codicefiscale.calc_check_digit(body)
            if codicefiscale.is_valid(value):
                return value

    def _nino(self) -> str:
        first = self.rng.choice("ABCEGHJKLMNOPRSTWXYZ")
        second = self.rng.choice("ABCEGHJKLMNPRSTWXYZ")
        digits = "".join(self.rng.choice(_DIGITS) for _ in range(6))
        value = f"{first}{second}{digits}{self.rng.choice('ABCD')}"
        return value if self.rng.random() < 0.6 else f"{value[:2]} {digits[:2]} {digits[2:4]} {digits[4:]} {value[-1]}"

    def _nric(self) -> str:
        """Singapore's published rule: weights 2765432 over the digits, +4 for T/G, a check letter per series."""
        prefix = self.rng.choice("STFG")
        digits = "".join(self.rng.choice(_DIGITS) for _ in range(7))
        total = sum(int(d) * w for d, w in zip(digits, (2, 7, 6, 5, 4, 3, 2), strict=True))
        total += 4 if prefix in "TG" else 0
        letters = "JZIHGFEDCBA" if prefix in "ST" else "XWUTRQPNMLK"
        return f"{prefix}{digits}{letters[total % 11]}"

    def secret(self) -> tuple[str, str]:
        rng = self.rng
        alphabet = string.ascii_letters + _DIGITS
        kind = rng.randrange(4)
        if kind == 0:
            body = "".join(rng.choice(alphabet + "/+") for _ in range(40))
            return body, rng.choice(["and the secret is", "secret access key:", "my secret key is", "with secret"])
        if kind == 1:
            body = "".join(rng.choice(alphabet + "+/") for _ in range(86)) + "=="
            return body, rng.choice(["the storage account key is", "Azure storage key:"])
        if kind == 2:
            body = "".join(rng.choice("0123456789abcdef") for _ in range(32))
            return body, rng.choice(["datadog api key", "our Twilio auth token is", "mailchimp key:"])
        body = "".join(rng.choice(alphabet) for _ in range(rng.randint(32, 48)))
        return body, rng.choice(["client secret is", "the API secret:", "secret token ="])


def _with(before: str, value: str, label: str, after: str) -> Sample:
    return Builder().text(before).slot(value, label).text(after).build()


def _kept(before: str, value: str, kind: str, after: str) -> Sample:
    return Builder().text(before).keep(value, kind).text(after).build()


def prose_password(h: Heldout) -> Sample:
    pw, rng = h.password(), h.rng
    user = rng.choice(["m.lindqvist@example.org", "jdoe", "admin", "k.vos@mail.example.nl"])
    templates = [
        (f"for the record my Spotify login is {user} / ", " — don't share"),
        ("I keep reusing ", " for everything, bad idea right?"),
        ("would ", " be a strong enough password for my bank?"),
        ("pw for the guest laptop: ", ""),
        ("ok the pass is ", " (case sensitive)"),
        (f"creds are {user} ", " if you need to get in"),
        (f"you can log in with {user} and ", " on the staging box"),
        (f"curl --user {user.split('@')[0]}:", " https://ci.example.net/api/builds"),
        (f"machine files.example.net login {user.split('@')[0]} password ", ""),
        ("mein Passwort lautet ", ", bitte nicht weitersagen"),
        ("le mot de passe du wifi c'est ", " au fait"),
        ("la contraseña nueva es ", ""),
        ("la password del router è ", " ok?"),
        ("het wachtwoord is ", " voor de NAS"),
    ]
    before, after = rng.choice(templates)
    return _with(before, pw, "PASSWORD", after)


def bare_phone(h: Heldout) -> Sample:
    number, _ = h.phone()
    rng = h.rng
    templates = [
        ("Dial-in: ", "\nPasscode to follow"),
        ("Jenna — ", " — after 6pm only"),
        ("", ""),
        ("back from holiday, try me at ", " or by mail"),
        ("Kontakt: ", ""),
        ("Urgences : ", ""),
        ("WhatsApp ", " pls"),
        ("the plumber (", ") said Tuesday"),
        ("numero di Marco ", ""),
        ("mijn nieuwe nummer ", "!"),
    ]
    before, after = rng.choice(templates)
    if before.endswith("(") and after.startswith(")"):
        return Builder().text(before).slot(number, "PHONE").keep(")", "closing bracket").text(after[1:]).build()
    return _with(before, number, "PHONE", after)


def ip6(h: Heldout) -> Sample:
    before, after = h.rng.choice(
        [
            ("sshd: Accepted publickey for deploy from ", " port 52814 ssh2"),
            ("can you whitelist ", " on the firewall?"),
            ("Die Adresse vom Server ist ", "."),
            ("client_ip=", " status=403"),
        ]
    )
    return _with(before, h.ipv6(), "IP_ADDRESS", after)


def cloud_secret(h: Heldout) -> Sample:
    body, cue = h.secret()
    rng = h.rng
    lead = rng.choice(["", "here you go: ", "fyi ", "ok so "])
    if cue.startswith(("and the secret", "with secret")):
        key_id = "AKIA" + "".join(rng.choice(_UPPER + _DIGITS) for _ in range(16))
        builder = Builder().text(f"{lead}access key ").slot(key_id, "API_KEY").text(f" {cue} ")
        return builder.slot(body, "API_KEY").build()
    return _with(f"{lead}{cue} ", body, "API_KEY", rng.choice(["", " — rotate it monday", "."]))


def national_id(h: Heldout) -> Sample:
    value, name, distinctive = h.national_id()
    rng = h.rng
    if distinctive and rng.random() < 0.4:
        before, after = rng.choice(
            [
                ("the form came back with ", " on it, is that right?"),
                ("mine is ", ""),
                ("Antrag: ", " bitte prüfen"),
                ("ho scritto ", " nel modulo"),
            ]
        )
    else:
        before, after = rng.choice(
            [
                (f"my {name} is ", ""),
                (f"{name}: ", ""),
                (f"here's the {name} ", " for the application"),
                (f"Mi {name} es ", "."),
                (f"{name} del cliente ", ""),
            ]
        )
    return _with(before, value, "ID_NUMBER", after)


def arithmetic(h: Heldout) -> Sample:
    rng = h.rng
    a, b = rng.randint(1000, 9999), rng.randint(100, 999)
    value = rng.choice([f"{a} - {b}", f"{a}-{b}", f"{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"])
    before, after = rng.choice(
        [
            ("what's ", "? my calculator died"),
            ("pages ", " are the appendix"),
            ("solve for x: x = ", " + 12"),
            ("Rechne mal ", " aus"),
            ("les lignes ", " du fichier"),
        ]
    )
    return _kept(before, value, "arithmetic or range", after)


def order_or_time(h: Heldout) -> Sample:
    rng = h.rng
    if rng.random() < 0.5:
        value = str(rng.randint(1_600_000_000, 1_799_999_999))
        before, after = rng.choice([("created_at=", " level=info"), ("epoch ", " in UTC?"), ('"ts": ', ",")])
        return _kept(before, value, "unix time", after)
    value = str(rng.randint(1_000_000_000, 9_999_999_999))
    before, after = rng.choice(
        [
            ("Your Amazon order ", " has shipped"),
            ("Bestellnummer ", ""),
            ("Commande n° ", " expédiée"),
            ("pedido ", " entregado"),
            ("tracking: ", ""),
        ]
    )
    return _kept(before, value, "order number", after)


def short_sha(h: Heldout) -> Sample:
    rng = h.rng
    sha = hashlib.sha1(str(rng.random()).encode()).hexdigest()[: rng.choice([7, 8, 10, 12])]
    before, after = rng.choice(
        [
            ("reverted ", " because it broke CI"),
            ("git cherry-pick ", ""),
            ("fixed in ", " (see PR)"),
            ("HEAD is now at ", " bump deps"),
        ]
    )
    return _kept(before, sha, "short git sha", after)


def hashed_file(h: Heldout) -> Sample:
    rng = h.rng
    digest = hashlib.md5(str(rng.random()).encode()).hexdigest()
    digits = "".join(rng.choice(_DIGITS) for _ in range(16))
    name = rng.choice(
        [
            f"app.{digest[:20]}.js",
            f"IMG_{digits}.jpg",
            f"export_{digest}.csv",
            f"backup-{digits[:14]}.tar.gz",
            f"main.{digest[:8]}.chunk.css",
        ]
    )
    return _kept(rng.choice(["the build emitted ", "attached ", "rm "]), name, "hash in file name", "")


def key_name(h: Heldout) -> Sample:
    rng = h.rng
    name = rng.choice(["ClearTextPassword", "PasswordExpired", "PasswordNeverExpires", "passwordPolicy",
                       "ResetPasswordToken", "TokenLifetime", "SecretRotationDays"])  # fmt: skip
    before, after = rng.choice(
        [
            ("Set-ADUser -Identity jdoe -", " $false"),
            ("in the GPO, ", " is greyed out"),
            ("the property ", " is read-only"),
        ]
    )
    return _kept(before, name, "key name", after)


def digit_groups(h: Heldout) -> Sample:
    rng = h.rng
    groups = " ".join("".join(rng.choice(_DIGITS) for _ in range(4)) for _ in range(rng.randint(4, 6)))
    before, after = rng.choice(
        [
            ("Kontonummer (alt): ", ""),
            ("reference ", " on the transfer"),
            ("Referenz: ", ""),
            ("mandate ", " signed"),
        ]
    )
    return _kept(before, groups, "digit groups", after)


def lookalike_prose(h: Heldout) -> Sample:
    rng = h.rng
    value = rng.choice(
        [
            ("is this a strong password?", "password question"),
            ("I reuse the same tote bag everywhere", "reuse sentence"),
            ("my pass for the museum expired", "pass sentence"),
            ("std::vector<int>::iterator", "c++ scope"),
            ("the meeting is 10:30:00 to 11:45:00", "clock time"),
            ("MAC 3c:22:fb:a1:09:7e", "mac address"),
            ("the secret is to let the dough rest", "secret sentence"),
            ("log in with Google or GitHub", "login sentence"),
            ("Die PIN-Sperre ist aktiv", "pin sentence"),
            ("le code postal 75011", "postal code"),
        ]
    )
    return _kept(rng.choice(["", "hmm, ", "Q: "]), value[0], value[1], "")


MAKERS: list[tuple[Callable[[Heldout], Sample], int]] = [
    (prose_password, 10), (bare_phone, 10), (ip6, 6), (cloud_secret, 6), (national_id, 12),
    (arithmetic, 6), (order_or_time, 6), (short_sha, 4), (hashed_file, 5), (key_name, 3), (digit_groups, 4),
    (lookalike_prose, 6),
]  # fmt: skip


def build_heldout_corpus(messages: int = HELDOUT_MESSAGES, seed: int = HELDOUT_SEED) -> list[Sample]:
    rng = random.Random(seed)
    heldout = Heldout(rng)
    makers = [maker for maker, _ in MAKERS]
    weights = [weight for _, weight in MAKERS]
    return [rng.choices(makers, weights)[0](heldout) for _ in range(messages)]
