"""Tuning-corpus messages for what is judged by context: passwords in sentences and on command lines, keys of
many providers, token links, IP hosts of connection strings, SSNs in tables, phone numbers as typed, and
the look-alikes of each (barcodes, ZIP+4, loopback addresses, versions, calculations, ids in JSON,
invoice numbers, hex key ids). A mixin of `redact_corpus.CorpusGenerator`; values come from Faker and
`phonenumbers`, keys follow the providers' documented formats.
"""

from __future__ import annotations

import base64
import random
import string
from collections.abc import Callable

import phonenumbers
from faker import Faker

from labeled import Builder, Sample

_ALNUM = string.ascii_letters + string.digits
_HEX = "0123456789abcdef"


class ContextMessages:
    """Message templates and hard negatives for the context-judged kinds; expects the generator's attributes."""

    rng: random.Random
    en: Faker
    dense: bool

    # --- values ------------------------------------------------------------------------------------

    def spoken_password(self) -> str:
        """Passwords as people pick them: a word and digits, a passphrase, a name and a year, a random string."""
        rng = self.rng
        words = [self.en.word() for _ in range(4)]
        return rng.choice([
            f"{words[0].title()}{rng.choice('!?#$%&')}{words[1]}{rng.randint(10, 9999)}",
            "-".join(words[: rng.randint(3, 4)]),
            f"{self.en.first_name()}{rng.randint(1950, 2020)}{rng.choice(['', '!', '#'])}",
            self.password(),
            f"{words[0]}{words[1]}{rng.randint(1, 999)}",
        ])  # fmt: skip

    def provider_key(self) -> str:
        rng = self.rng
        makers: list[Callable[[], str]] = [
            lambda: "npm_" + self._random(_ALNUM, 36),
            lambda: f"SG.{self._random(_ALNUM + '-_', 22)}.{self._random(_ALNUM + '-_', 43)}",
            lambda: "SK" + self._random(_HEX, 32),
            lambda: "glpat-" + self._random(_ALNUM + "_-", 20),
            lambda: (
                f"xoxp-{self._random(string.digits, 11)}-{self._random(string.digits, 12)}-{self._random(_HEX, 32)}"
            ),
            lambda: "rk_live_" + self._random(_ALNUM, 40),
            lambda: "dop_v1_" + self._random(_HEX, 64),
            lambda: "shpat_" + self._random(_HEX, 32),
            lambda: "hvs." + self._random(_ALNUM + "_-", 100),
            lambda: "pypi-AgEIcHlwaS5vcmc" + self._random(_ALNUM + "_-", 80),
            lambda: "sk-ant-admin01-" + self._random(_ALNUM + "_-", 93) + "AA",
            lambda: "gsk_" + self._random(_ALNUM, 52),
            lambda: self._discord_token(),
            lambda: f"{rng.randint(10**8, 10**10)}:AA{self._random(_ALNUM + '_-', 33)}",
        ]
        return rng.choice(makers)()

    def _discord_token(self) -> str:
        user = base64.b64encode(str(self.rng.randint(10**17, 10**19)).encode()).decode().rstrip("=")
        return f"{user}.{self._random(_ALNUM + '_-', 6)}.{self._random(_ALNUM + '_-', 38)}"

    def typed_phone(self) -> str:
        """German numbers with a slash, E.164 written without spaces, bare national numbers."""
        rng = self.rng
        region = rng.choice(["DE", "AT", "GB", "US", "FR", "IT", "NL", "CH"])
        kind = rng.choice([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
        example = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)
        national = str(example.national_number)
        for _ in range(100):
            tail = "".join(rng.choice(string.digits) for _ in range(3))
            number = phonenumbers.parse(f"+{example.country_code}{national[:-3]}{tail}")
            if phonenumbers.is_valid_number(number):
                break
        else:
            number = example
        formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        digits = "".join(c for c in formatted if c.isdigit())
        if region in ("DE", "AT") and rng.random() < 0.6:
            area = formatted.split(" ")[0]
            return f"{area}/{digits[len(area) :]}"
        if rng.random() < 0.5:
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        return digits

    # --- messages ----------------------------------------------------------------------------------

    def context_message(self) -> Sample:
        templates = [self._password_talk, self._shell_history, self._settings_module, self._keys_everywhere,
                     self._links_with_tokens, self._broker_hosts, self._people_table, self._phone_notes]  # fmt: skip
        return self.rng.choice(templates)()

    def _password_talk(self) -> Sample:
        rng, b = self.rng, Builder()
        secret = self.spoken_password()
        lead = rng.choice([
            f"my {rng.choice(['gmail', 'netflix', 'vpn', 'bank'])} password is ",
            f"{rng.choice(['login', 'user'])} {self.en.user_name()} / pass ",
            f"the {rng.choice(['alarm', 'nas', 'printer'])} admin pw: ",
            "password for the shared drive is ",
            f"account {self.en.email()} password ",
            "I keep using ",
        ])  # fmt: skip
        b.text(self.prose(0, 1)).text(" " if not self.dense else "").text(lead).slot(secret, "PASSWORD")
        b.text(" everywhere" if lead == "I keep using " else rng.choice(["", ", please remember it", ". thanks"]))
        self._context_negative(b)
        return b.build()

    def _shell_history(self) -> Sample:
        rng, b = self.rng, Builder()
        secret = self.password().replace("'", "").replace('"', "").replace(" ", "")
        user = self.en.user_name()
        host = self.en.domain_word()
        forms: list[Callable[[], None]] = [
            lambda: b.text(f"$ mysql -h {host} -u{user} -p").slot(secret, "PASSWORD").text(" -e 'show tables'\n"),
            lambda: b.text("$ sshpass -p ").slot(secret, "PASSWORD").text(f" scp dump.sql {user}@{host}:/tmp\n"),
            lambda: b.text(f"$ curl --user {user}:").slot(secret, "PASSWORD").text(f" https://{host}.example/api\n"),
            lambda: b.text("$ export PGPASSWORD=").slot(secret, "PASSWORD").text(f"; pg_dump -h {host} app\n"),
            lambda: b.text(f"$ ./deploy --host {host} --password ").slot(secret, "PASSWORD").text(" --yes\n"),
            lambda: (
                b.text(f"$ mongosh -u {user} -p ").slot(secret, "PASSWORD").text(" --authenticationDatabase admin\n")
            ),
            lambda: b.text(f"$ smbclient //{host}/share -U {user}%").slot(secret, "PASSWORD").text("\n"),
            lambda: b.text("$ sqlcmd -S db -U sa -P ").slot(secret, "PASSWORD").text("\n"),
        ]
        b.text("ran these:\n")
        rng.choice(forms)()
        b.text(f"$ ssh -p {rng.choice([22, 2222])} {user}@{host}\n$ psql -p 5433 -U {user}\n")
        self._context_negative(b)
        return b.build()

    def _settings_module(self) -> Sample:
        rng, b = self.rng, Builder()
        b.text("settings.py:\nDATABASES = {\n    'default': {\n        'NAME': 'app',\n        'PASSWORD': '")
        b.slot(self.password().replace("'", ""), "PASSWORD").text("',\n        'HOST': '")
        b.slot(self.en.ipv4_private(), "IP_ADDRESS").text("',\n        'PORT': '5432',\n    }\n}\nSECRET_KEY = '")
        b.slot(self._random(_ALNUM + "!@#%^&*(-_=+)", 50), "API_KEY").text("'\n")
        if rng.random() < 0.5:
            b.text('{"type": "service_account", "private_key_id": "').slot(self._random(_HEX, 40), "KEEP:hex_key_id")
            b.text('"}\n')
        self._context_negative(b)
        return b.build()

    def _keys_everywhere(self) -> Sample:
        rng, b = self.rng, Builder()
        style = rng.randrange(3)
        if style == 0:
            key_id = "AKIA" + self._random(string.ascii_uppercase + "234567", 16)
            b.text("aws creds: ").slot(key_id, "API_KEY").text(" / ").slot(self._random(_ALNUM + "/+", 40), "API_KEY")
        elif style == 1:
            b.text(f"AccountName={self.en.domain_word()};AccountKey=").slot(
                self._random(_ALNUM + "+/", 86) + "==", "API_KEY"
            )
            b.text(";EndpointSuffix=core.windows.net")
        else:
            b.text(rng.choice(["token: ", "here's the key ", "using "])).slot(self.provider_key(), "API_KEY")
        self._context_negative(b)
        return b.build()

    def _links_with_tokens(self) -> Sample:
        rng, b = self.rng, Builder()
        domain = self.en.domain_name()
        if rng.random() < 0.3:
            token = f"{rng.randint(10**8, 10**10)}:AA{self._random(_ALNUM + '_-', 33)}"
            url = f"https://api.telegram.org/bot{token}/{rng.choice(['sendPhoto', 'getWebhookInfo'])}"
        else:
            name = rng.choice(["t", "token", "sig", "code", "key", "reset_token", "auth"])
            url = f"https://{domain}/{self.en.uri_path()}?{name}={self._random(_ALNUM, rng.choice([20, 32, 40]))}"
        b.text(rng.choice(["got this link: ", "is this phishing? ", "link -> "])).slot(url, "URL_WITH_TOKEN")
        b.text(" and the docs are at ").slot(f"https://{domain}/help?page={rng.randint(1, 9)}&lang=en", "KEEP:url")
        return b.build()

    def _broker_hosts(self) -> Sample:
        rng, b = self.rng, Builder()
        scheme, port = rng.choice([("amqp", 5672), ("redis", 6380), ("mongodb", 27018), ("mysql", 3307)])
        user = "" if scheme == "redis" else self.en.user_name()
        b.text(f"CELERY_BROKER={scheme}://{user}:").slot(self._random(_ALNUM, rng.randint(10, 24)), "PASSWORD")
        b.text("@").slot(self.en.ipv4_public(), "IP_ADDRESS").text(f":{port}/0\n")
        b.text("Host: ").slot(self._full_ipv6(), "IP_ADDRESS").text("\n")
        self._context_negative(b)
        return b.build()

    def _full_ipv6(self) -> str:
        return ":".join(f"{self.rng.randint(0, 0xFFFF):04x}" for _ in range(8))

    def _people_table(self) -> Sample:
        rng, b = self.rng, Builder()
        ssn = self.en.ssn().replace("-", "")
        if rng.random() < 0.5:
            b.text("id;name;ssn;state\n").text(f"{rng.randint(1, 99)};{self.en.name()};").slot(ssn, "SSN")
            b.text(f";{self.en.state_abbr()}\n")
        else:
            b.text(rng.choice(["SSN on file: ", "her social security number is ", "My SSN is "])).slot(ssn, "SSN")
        self._context_negative(b)
        return b.build()

    def _phone_notes(self) -> Sample:
        rng, b = self.rng, Builder()
        style = rng.randrange(3)
        if style == 0:
            lead = rng.choice(["Tel. ", "mobile: ", "call me at ", "his number: ", "Handy "])
            b.text(lead).slot(self.typed_phone(), "PHONE")
        elif style == 1:
            verb, who = (
                rng.choice(["text", "call", "ring"]),
                rng.choice(["my sister", "the front desk", "our landlord"]),
            )
            b.text(f"{verb} {who} {rng.choice(['on', 'at'])} ").slot(self.typed_phone(), "PHONE")
        else:
            b.text("contact,mobile,team\n").text(f"{self.en.name()},").slot(self.typed_phone(), "PHONE")
            job = self.en.job().replace(",", "")  # a CSV writer would quote a job with a comma; these rows do not
            b.text(f",{job}\n{self.en.name()},").slot(self.typed_phone(), "PHONE").text(",ops\n")
        self._context_negative(b)
        return b.build()

    # --- hard negatives ----------------------------------------------------------------------------

    def _context_negative(self, builder: Builder) -> None:
        before, value, kind = self.context_negative()
        builder.text(f"\n{before}").slot(value, f"KEEP:{kind}")

    def context_negative(self) -> tuple[str, str, str]:
        rng, en = self.rng, self.en

        def four_part() -> str:
            return ".".join(str(rng.randint(0, 99)) for _ in range(4))

        def local_number() -> str:
            return f"{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"

        isbn = en.isbn13()
        kinds: list[Callable[[], tuple[str, str, str]]] = [
            lambda: ("barcode ", en.ean13(), "ean_upc"),
            lambda: ("UPC-A: ", en.upc_a(), "ean_upc"),
            lambda: ("item;gtin;price\nmug;", "0" + en.upc_a(), "ean_upc"),
            lambda: ("the book ", isbn.replace("-", "") if rng.random() < 0.5 else isbn, "isbn"),
            lambda: (f"{en.city()}, {en.state_abbr()} ", f"{en.zipcode()}-{rng.randint(1000, 9999)}", "zip_plus_4"),
            lambda: ("127.0.1.1 is fine but ", f"127.{rng.randint(0, 255)}.{rng.randint(0, 255)}.9", "loopback"),
            lambda: (f"v{four_part()} vs ", four_part(), "version_pair"),
            lambda: (f"{local_number()} + ", local_number(), "arithmetic"),
            lambda: ('{"order_id": ', str(rng.randint(10**9, 10**10)), "json_id"),
            lambda: ('"total": "', str(rng.randint(10**9, 10**10)), "json_id"),
            lambda: ("Invoice ", "-".join(str(rng.randint(1000, 9999)) for _ in range(3)), "invoice"),
            lambda: ('"key_id": "', self._random(_HEX, 40), "hex_key_id"),
            lambda: ("https://", f"{en.domain_word()}-{self._random(_HEX, 7)}.web.app", "hex_host"),
            lambda: ("please ", rng.choice(["bypass the proxy", "pass the tests", "pass it along"]), "pass_word"),
            lambda: ("DB_PASSWORD=", rng.choice(["${DB_PASSWORD}", "<secret>", "%(db_pw)s"]), "placeholder"),
            lambda: ("STRIPE_PUBLISHABLE_KEY=", "pk_live_" + self._random(_ALNUM, 24), "publishable_key"),
        ]
        return rng.choice(kinds)()
