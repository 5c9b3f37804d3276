"""Fresh values in the shapes `facts.py` records: keys, cards, IBANs, phone numbers as people type them,
passwords of the kinds people choose, and the look-alikes that must be kept.
"""

from __future__ import annotations

import base64
import json
import random
import string

import phonenumbers

from .facts import (
    ALNUM,
    BASE64,
    HEX,
    IBAN_STRUCTURES,
    PHONE_REGIONS,
    PROVIDER_FORMATS,
    PUBLISHED_TEST_CARDS,
    UNPREFIXED_SECRETS,
)

WORDS = [
    "apple", "river", "stone", "violet", "tiger", "window", "orange", "planet", "coffee", "silver", "garden",
    "rocket", "winter", "harbor", "maple", "copper", "falcon", "meadow", "thunder", "pepper", "lantern", "canyon",
    "velvet", "marble", "anchor", "cobalt", "juniper", "saddle", "ember", "willow", "quartz", "breeze", "hollow",
    "summit", "cedar", "ripple", "nimbus", "pixel", "tundra", "mango"
]  # fmt: skip
NAMES = [
    "Maria", "Jonas", "Priya", "Tom", "Aiko", "Lucas", "Fatima", "Ole", "Chen", "Sofia", "Diego", "Hannah", "Kwame",
    "Ines", "Mateo", "Yuki"
]  # fmt: skip
SURNAMES = [
    "Keller", "Okafor", "Nakamura", "Silva", "Novak", "Haddad", "Lindqvist", "Moreau", "Kowalski", "Brennan",
    "Duarte", "Rahman"
]  # fmt: skip
DOMAINS = ["gmail.com", "outlook.com", "proton.me", "web.de", "yahoo.co.uk", "icloud.com", "fastmail.fm",
           "acme-corp.io", "stadtwerke-nord.de", "uni-hamburg.de", "example.org", "mail.ru", "naver.com"]  # fmt: skip


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def luhn_complete(prefix: str) -> str:
    """`prefix` with the one check digit that makes it Luhn-valid."""
    return next(prefix + d for d in string.digits if luhn_ok(prefix + d))


def gtin_complete(body: str) -> str:
    """EAN-13 / UPC-A: `body` with its GS1 check digit (weights 3 and 1 from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def isbn13_complete(body: str) -> str:
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


class Values:
    """Value makers sharing one random generator."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.cards = [card for card in PUBLISHED_TEST_CARDS if luhn_ok(card)]

    def pick(self, options: list) -> object:
        return self.rng.choice(options)

    def chars(self, alphabet: str, length: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(length))

    # --- secrets -----------------------------------------------------------------------------------

    def provider_key(self, provider: str | None = None) -> tuple[str, str]:
        provider = provider or self.rng.choice(sorted(PROVIDER_FORMATS))
        pieces = PROVIDER_FORMATS[provider]
        value = "".join(p if isinstance(p, str) else self.chars(*p) for p in pieces)  # type: ignore[misc]
        return provider, value

    def unprefixed_secret(self) -> tuple[str, str]:
        name = self.rng.choice(sorted(UNPREFIXED_SECRETS))
        alphabet, length = UNPREFIXED_SECRETS[name]
        value = self.chars(alphabet, length)
        while not any(c.isdigit() for c in value):
            value = self.chars(alphabet, length)
        return name, value

    def aws_pair(self) -> tuple[str, str]:
        key_id = self.rng.choice(["AKIA", "ASIA"]) + self.chars(string.ascii_uppercase + "234567", 16)
        return key_id, self.chars(BASE64, 40)

    def azure_account_key(self) -> str:
        return self.chars(BASE64, 86) + "=="

    def azure_client_secret(self) -> str:
        return self.chars(ALNUM, 3) + self.chars(string.digits, 1) + "Q~" + self.chars(ALNUM + "_~.-", 34)

    def discord_bot_token(self) -> str:
        user_id = str(self.rng.randint(10**17, 10**19 - 1)).encode()
        first = base64.b64encode(user_id).decode().rstrip("=")
        return f"{first}.{self.chars(ALNUM + '-_', 6)}.{self.chars(ALNUM + '-_', 38)}"

    def telegram_bot_token(self) -> str:
        return f"{self.rng.randint(10**8, 10**10 - 1)}:AA{self.chars(ALNUM + '-_', 33)}"

    def jwt(self) -> str:
        def part(data: dict) -> str:
            return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")

        header = part({"alg": self.rng.choice(["RS256", "HS512", "ES256"]), "kid": self.chars(HEX, 8)})
        claims = {"sub": self.chars(ALNUM, 12), "exp": self.rng.randint(1.7e9, 1.9e9), "scope": "read write"}
        return f"{header}.{part(claims)}.{self.chars(ALNUM + '-_', self.rng.choice([43, 86, 342]))}"

    def private_key(self, escaped_newlines: bool = False) -> str:
        kind = self.rng.choice(["RSA ", "EC ", "OPENSSH ", "DSA ", "ENCRYPTED ", "", "PGP "])
        suffix = " BLOCK" if kind == "PGP " else ""
        lines = [self.chars(BASE64, 64) for _ in range(self.rng.randint(3, 12))] + [self.chars(BASE64, 20) + "=="]
        newline = "\\n" if escaped_newlines else "\n"
        begin, end = f"-----BEGIN {kind}PRIVATE KEY{suffix}-----", f"-----END {kind}PRIVATE KEY{suffix}-----"
        return newline.join([begin, *lines, end])

    def password(self) -> str:
        """Passwords as people choose them: words with digits and symbols, passphrases, random strings."""
        word = self.rng.choice(WORDS)
        style = self.rng.randrange(7)
        if style == 0:
            symbol, second = self.rng.choice("!$#@%&*"), self.rng.choice(WORDS).capitalize()
            return f"{word.capitalize()}{symbol}{second}{self.rng.randint(1, 9999)}"
        if style == 1:
            return "-".join(self.rng.sample(WORDS, self.rng.randint(3, 5)))
        if style == 2:
            return self.chars(ALNUM + "!@#$%^&*_-+=", self.rng.randint(10, 24))
        if style == 3:
            return word.replace("a", "@").replace("o", "0").replace("e", "3") + str(self.rng.randint(10, 99)) + "!"
        if style == 4:
            return f"{self.rng.choice(NAMES)}{self.rng.randint(1960, 2015)}{self.rng.choice(['', '!', '?', '.'])}"
        if style == 5:
            return self.chars(ALNUM, self.rng.randint(12, 20))
        return f"{word}{self.rng.choice(WORDS)}{self.rng.randint(100, 999)}"

    # --- personal data -----------------------------------------------------------------------------

    def email(self) -> str:
        first, last = self.rng.choice(NAMES).lower(), self.rng.choice(SURNAMES).lower()
        tag = self.rng.choice(["shop", "bills", "git"])
        local = self.rng.choice([f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}{self.rng.randint(1, 99)}",
                                 f"{first}+{tag}", f"{last}.{first}-work"])  # fmt: skip
        domain = self.rng.choice(DOMAINS)
        value = f"{local}@{domain}"
        return value.upper() if self.rng.random() < 0.05 else value

    def phone(self, region: str | None = None) -> tuple[str, str, bool]:
        """(region, typed number, is national format)."""
        region = region or self.rng.choice(PHONE_REGIONS)
        kind = self.rng.choice([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
        number = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)
        fmt = phonenumbers.PhoneNumberFormat
        national = phonenumbers.format_number(number, fmt.NATIONAL)
        international = phonenumbers.format_number(number, fmt.INTERNATIONAL)
        e164 = phonenumbers.format_number(number, fmt.E164)
        styles = [
            (international, False),
            (e164, False),
            ("00" + e164[1:], False),
            (international.replace(" ", "-"), False),
            (national, True),
            ("".join(c for c in national if c.isdigit()), True),
        ]
        if region in ("DE", "AT"):
            digits = "".join(c for c in national if c.isdigit())
            cut = len(national.split(" ")[0])
            styles.append((f"{digits[:cut]}/{digits[cut:]}", True))
        if region in ("GB", "DE", "AT", "CH"):
            code, rest = international.split(" ", 1)
            styles.append((f"{code} (0){rest}", False))
        typed, is_national = self.rng.choice(styles)
        return region, typed, is_national

    def card(self) -> str:
        number = self.rng.choice(self.cards) if self.rng.random() < 0.6 else self._fresh_card()
        style = self.rng.randrange(4)
        if style == 0 or len(number) == 13:
            return number
        separator = " " if style < 3 else "-"
        if len(number) in (14, 15):  # Diners 4-6-4, Amex 4-6-5
            return separator.join([number[:4], number[4:10], number[10:]])
        return separator.join(number[i : i + 4] for i in range(0, len(number), 4))

    def luhn_imei(self) -> str:
        """A 15-digit IMEI: an 8-digit type allocation code, a serial and a Luhn check digit."""
        return luhn_complete(self.rng.choice(["35", "86", "01"]) + self.chars(string.digits, 12))

    def _fresh_card(self) -> str:
        prefix, length = self.rng.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15),
                                          ("6011", 16), ("35", 16), ("36", 14), ("62", 16)])  # fmt: skip
        return luhn_complete(prefix + self.chars(string.digits, length - len(prefix) - 1))

    def iban(self) -> str:
        country = self.rng.choice(sorted(IBAN_STRUCTURES))
        bban = ""
        structure = IBAN_STRUCTURES[country]
        for count, kind in _pieces(structure):
            alphabet = {"n": string.digits, "a": string.ascii_uppercase, "c": string.ascii_uppercase + string.digits}
            bban += self.chars(alphabet[kind], count)
        rearranged = "".join(str(int(c, 36)) for c in bban + country + "00")
        check = 98 - int(rearranged) % 97
        value = f"{country}{check:02d}{bban}"
        if self.rng.random() < 0.5:
            return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        return value

    def ssn(self) -> str:
        area = self.rng.choice([n for n in range(1, 900) if n != 666])
        return f"{area:03d}{self.rng.randint(1, 99):02d}{self.rng.randint(1, 9999):04d}"

    def public_ipv4(self) -> str:
        first = self.rng.choice([n for n in range(1, 224) if n not in (10, 127, 0)])
        return f"{first}.{self.rng.randint(0, 255)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"

    def private_ipv4(self) -> str:
        return self.rng.choice([
            f"10.{self.rng.randint(0, 255)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}",
            f"192.168.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}",
            f"172.{self.rng.randint(16, 31)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}",
        ])  # fmt: skip

    def ipv6(self) -> str:
        groups = [f"{self.rng.randint(0, 0xFFFF):x}" for _ in range(8)]
        groups[0] = self.rng.choice(["2001", "2a02", "2600", "fe80", "2406"])
        style = self.rng.randrange(3)
        if style == 0:
            return ":".join(groups)
        if style == 1:
            return ":".join(f"{int(g, 16):04x}" for g in groups)
        return ":".join(groups[:3]) + "::" + ":".join(groups[6:])


def _pieces(structure: str) -> list[tuple[int, str]]:
    pieces, number = [], ""
    for char in structure:
        if char.isdigit():
            number += char
        else:
            pieces.append((int(number), char))
            number = ""
    return pieces
