"""The tuning corpus: labeled realistic chat messages for the redaction benchmark and its regression test,
the corpus `milton_lora.redact` is tuned on (the independent evaluation corpus is `pii_eval/`).

Each message is built from a template whose slots are filled with generated values; every slot keeps
its span and its label (one of `milton_lora.redact.LABELS`) or `KEEP:<kind>` for hard negatives that
must come out untouched. Values come from Faker in several locales and from `phonenumbers`' own
numbering plans (a person's real number is a valid one), keys follow each provider's documented format.
The messages judged by context (passwords in sentences and commands, tables, token links...) come from
`redact_corpus_context.py`.
"""

from __future__ import annotations

import base64
import json
import random
import string
import uuid
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote

import phonenumbers
from faker import Faker

from labeled import Builder, Sample
from redact_corpus_context import ContextMessages

LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR", "ja_JP", "en_IN", "en_AU"]
NATIONAL_REGIONS = ["US", "GB", "DE", "FR", "ES", "IT", "NL", "IN", "AU", "BR", "JP", "MX", "CH", "SE", "PL", "IE"]
INTERNATIONAL_REGIONS = [*NATIONAL_REGIONS, "CN", "KR", "ZA", "NG", "AR", "SG", "NZ", "AT", "BE", "DK", "NO", "FI"]


_CONFIG_LINES = [
    "LOG_LEVEL=info", "PORT=8080", "WORKERS=4", "FEATURE_NEW_CHECKOUT=true", "REDIS_HOST=cache", "TZ=Europe/Paris",
    "MAX_UPLOAD_MB=25", "CORS_ORIGINS=https://app.example.com", "SENTRY_ENVIRONMENT=staging", "CACHE_TTL=300",
    "NODE_ENV=production", "TIMEOUT_SECONDS=30", "RETRIES=3", "QUEUE_NAME=default", "STATIC_ROOT=/srv/static",
]  # fmt: skip
_FRAMES = ["requests/adapters.py", "urllib3/connectionpool.py", "app/services/billing.py", "app/api/routes.py",
           "sqlalchemy/engine/base.py", "celery/app/task.py", "httpx/_client.py", "app/workers/sync.py"]  # fmt: skip
_CODE_LINES = ["response = session.send(request, **kwargs)", "return self._run_query(statement, params)",
               "result = handler(event, context)", "conn = pool.get_connection(timeout=self.timeout)",
               "data = json.loads(payload)", "raise ConnectionError(err, request=request)"]  # fmt: skip


class CorpusGenerator(ContextMessages):
    def __init__(self, seed: int = 7, dense: bool = False):
        self.dense = dense
        self.rng = random.Random(seed)
        self.fakers = {locale: Faker(locale) for locale in LOCALES}
        for index, faker in enumerate(self.fakers.values()):
            faker.seed_instance(seed + index)
        self.en = self.fakers["en_US"]

    def faker(self) -> Faker:
        return self.fakers[self.rng.choice(LOCALES)]

    # --- positive values ----------------------------------------------------------------------

    def email(self) -> str:
        faker = self.faker()
        style = self.rng.random()
        if style < 0.5:
            return faker.email()
        if style < 0.7:
            user = faker.user_name()
            return f"{user}+{self.rng.choice(['news', 'work', 'x1'])}@{faker.free_email_domain()}"
        if style < 0.85:
            return faker.company_email().upper() if self.rng.random() < 0.3 else faker.company_email()
        return f"{faker.first_name().lower()}.{faker.last_name().lower()}@{faker.domain_name(2)}".replace(" ", "")

    def phone(self) -> str:
        style = self.rng.random()
        if style < 0.35:
            faker_choice = self.rng.choice(["en_US", "en_GB", "fr_FR", "es_ES", "it_IT", "de_DE", "ja_JP"])
            region = faker_choice.split("_")[1]
            for _ in range(50):
                value = self.fakers[faker_choice].phone_number()
                try:
                    if phonenumbers.is_valid_number(phonenumbers.parse(value, region)):
                        return value
                except phonenumbers.NumberParseException:
                    continue
        international = style > 0.7
        region = self.rng.choice(INTERNATIONAL_REGIONS if international else NATIONAL_REGIONS)
        number = self._valid_number(region)
        if international:
            fmt = self.rng.choice([phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164])
            return phonenumbers.format_number(number, fmt)
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)

    def _valid_number(self, region: str) -> phonenumbers.PhoneNumber:
        kind = self.rng.choice([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
        example = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)
        national = str(example.national_number)
        for _ in range(200):
            tail = "".join(self.rng.choice(string.digits) for _ in range(4))
            candidate = phonenumbers.parse(f"+{example.country_code}{national[:-4]}{tail}")
            if phonenumbers.is_valid_number(candidate):
                return candidate
        return example

    def _moment(self) -> datetime:
        # Faker's date()/time() draw up to "now", which would make the corpus change with the clock.
        return self.en.date_time_between(datetime(1990, 1, 1), datetime(2030, 12, 31))

    def _random(self, alphabet: str, length: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(length))

    def api_key(self) -> str:
        alnum = string.ascii_letters + string.digits
        makers: list[Callable[[], str]] = [
            lambda: "sk-" + self._random(alnum, 48),
            lambda: "sk-proj-" + self._random(alnum + "_-", 156),
            lambda: "sk-ant-api03-" + self._random(alnum + "_-", 93) + "AA",
            lambda: "ghp_" + self._random(alnum, 36),
            lambda: "github_pat_" + self._random(alnum, 22) + "_" + self._random(alnum, 59),
            lambda: "glpat-" + self._random(alnum + "_-", 20),
            lambda: "AKIA" + self._random(string.ascii_uppercase + "234567", 16),
            lambda: (
                f"xoxb-{self._random(string.digits, 12)}-{self._random(string.digits, 13)}-{self._random(alnum, 24)}"
            ),
            lambda: "sk_live_" + self._random(alnum, 24),
            lambda: "AIza" + self._random(alnum + "_-", 35),
            lambda: "hf_" + self._random(alnum, 34),
        ]
        return self.rng.choice(makers)()

    def secret_value(self) -> str:
        return self._random(string.ascii_letters + string.digits + "/+", self.rng.choice([32, 40, 48, 64]))

    def jwt(self) -> str:
        def part(payload: dict) -> str:
            return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")

        header = part({"alg": self.rng.choice(["HS256", "RS256"]), "typ": "JWT"})
        body = part({"sub": str(self.rng.randint(1, 10**9)), "name": self.en.name(), "iat": 1700000000})
        return f"{header}.{body}.{self._random(string.ascii_letters + string.digits + '_-', 43)}"

    def private_key(self) -> str:
        kind = self.rng.choice(["RSA ", "EC ", "OPENSSH ", "ENCRYPTED ", ""])
        body = "\n".join(self._random(string.ascii_letters + string.digits + "+/", 64) for _ in range(6))
        return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"

    def card(self) -> str:
        kind = self.rng.choice(["visa16", "mastercard", "amex", "discover", "jcb", "visa13", "diners"])
        number = self.en.credit_card_number(card_type=kind)
        style = self.rng.random()
        if style < 0.4:
            return number
        sep = " " if style < 0.8 else "-"
        if len(number) == 15:
            return sep.join([number[:4], number[4:10], number[10:]])
        return sep.join(number[i : i + 4] for i in range(0, len(number), 4))

    def iban(self) -> str:
        locale = self.rng.choice(["de_DE", "fr_FR", "en_GB", "es_ES", "it_IT", "nl_NL"])
        value = self.fakers[locale].iban()
        if self.rng.random() < 0.5:
            return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        return value

    def ip(self) -> str:
        choice = self.rng.random()
        if choice < 0.45:
            return self.en.ipv4_public()
        if choice < 0.8:
            return self.en.ipv4_private()
        return self.en.ipv6()

    def ssn(self) -> str:
        return self.fakers["en_US"].ssn()

    def password(self) -> str:
        return self.en.password(length=self.rng.randint(8, 20), special_chars=self.rng.random() < 0.7)

    # --- hard negatives -------------------------------------------------------------------------

    def negative(self) -> tuple[str, str, str]:
        """(text before, value, kind): the value must come out untouched."""
        rng = self.rng
        kinds: list[Callable[[], tuple[str, str, str]]] = [
            lambda: (
                rng.choice(["Python ", "upgraded to ", "version ", "v", "release "]),
                rng.choice(["3.11.7", "2.13.0", "7.7.19.3", "10.4.2.1", "1.2.3.4", "4.0.1"]),
                "version",
            ),
            lambda: (
                rng.choice(["on ", "due ", "since "]),
                self._moment().strftime(rng.choice(["%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y"])),
                "date",
            ),
            lambda: ("at ", self._moment().strftime(rng.choice(["%H:%M", "%H:%M:%S"])), "time"),
            lambda: (
                rng.choice(["timestamp ", "created_at=", "ts: "]),
                str(rng.randint(1_500_000_000, 1_900_000_000)),
                "unix_timestamp",
            ),
            lambda: (
                "costs ",
                rng.choice(["$", "€", "£"]) + f"{rng.randint(1, 9999):,}.{rng.randint(0, 99):02d}",
                "price",
            ),
            lambda: (
                rng.choice(["order #", "Order ", "invoice no. "]),
                f"{rng.randint(100, 999)}-{rng.randint(10**6, 10**7 - 1)}-{rng.randint(10**6, 10**7 - 1)}",
                "order_number",
            ),
            lambda: ("ISBN ", self.en.isbn13(), "isbn"),
            lambda: ("commit ", self._random("0123456789abcdef", rng.choice([7, 12, 40])), "git_sha"),
            lambda: ("id ", str(uuid.UUID(int=rng.getrandbits(128), version=4)), "uuid"),
            lambda: (
                rng.choice(["localhost:", "port ", "0.0.0.0:"]),
                str(rng.choice([80, 443, 5432, 8080, 8000, 6379])),
                "port",
            ),
            lambda: (
                "bind to ",
                rng.choice(["127.0.0.1", "0.0.0.0", "255.255.255.0", "255.255.0.0", "::1"]),
                "local_ip",
            ),
            lambda: (
                "log in as ",
                rng.choice(["root@localhost", "admin@localhost", "postgres@localhost"]),
                "user_at_localhost",
            ),
            lambda: (
                "git clone ",
                f"git@github.com:{self.en.user_name()}/{rng.choice(['api', 'web', 'infra'])}.git",
                "git_remote",
            ),
            lambda: (
                "use ",
                rng.choice(["sk-xxxx", "sk-...", "<your-api-key>", "YOUR_API_KEY", "ghp_xxxxxxxx"]),
                "placeholder",
            ),
            lambda: (
                "see ",
                rng.choice(
                    [
                        "https://docs.python.org/3/library/re.html",
                        "https://example.com/a?page=2&q=ok",
                        "https://github.com/org/repo/pull/42",
                        "http://localhost:8000/v1/models",
                    ]
                ),
                "url",
            ),
            lambda: (
                "call ",
                rng.choice(
                    [
                        "tokenizer.encode(text)",
                        "get_password_hash(pw)",
                        "max_tokens",
                        "api_key_header",
                        "self.secret_manager",
                        "auth_middleware",
                    ]
                ),
                "identifier",
            ),
        ]
        return rng.choice(kinds)()

    # --- filler: what surrounds PII in real chats (skipped with dense=True) -----------------------

    def prose(self, low: int, high: int) -> str:
        if self.dense:
            return ""
        count = self.rng.randint(low, high)
        return " ".join(self.faker().paragraph(nb_sentences=self.rng.randint(3, 6)) for _ in range(count))

    def config_lines(self) -> str:
        if self.dense:
            return ""
        return "\n".join(self.rng.sample(_CONFIG_LINES, self.rng.randint(6, len(_CONFIG_LINES)))) + "\n"

    def frames(self) -> str:
        if self.dense:
            return ""
        lines = []
        for _ in range(self.rng.randint(6, 20)):
            path = self.rng.choice(_FRAMES)
            lines.append(f'  File "/usr/lib/python3.11/site-packages/{path}", line {self.rng.randint(10, 900)}, in '
                         f"{self.en.word()}\n    {self.rng.choice(_CODE_LINES)}")  # fmt: skip
        return "\n".join(lines) + "\n"

    # --- messages --------------------------------------------------------------------------------

    def message(self) -> Sample:
        rng = self.rng
        templates = [self._scheduling, self._config_paste, self._stack_trace, self._curl, self._email_chat,
                     self._payment, self._plain, self._plain, self.context_message, self.context_message]  # fmt: skip
        return rng.choice(templates)()

    def _maybe_negative(self, builder: Builder) -> None:
        if self.rng.random() < 0.8:
            before, value, kind = self.negative()
            builder.text(f" Also, {before}").slot(value, f"KEEP:{kind}").text(".")

    def _scheduling(self) -> Sample:
        b = Builder()
        name = self.faker().first_name()
        b.text(self.prose(0, 2)).text(f" Can you move my meeting with {name} to Thursday? Her number is ").slot(
            self.phone(), "PHONE"
        )
        b.text(" and her email is ").slot(self.email(), "EMAIL").text(".")
        self._maybe_negative(b)
        return b.build()

    def _config_paste(self) -> Sample:
        b = Builder()
        b.text(self.prose(0, 1)).text("\nMy app won't start, here is the .env:\n").text(self.config_lines())
        b.text("OPENAI_API_KEY=").slot(self.api_key(), "API_KEY").text("\n")
        b.text(f"{self.rng.choice(['SECRET_KEY', 'aws_secret_access_key', 'CLIENT_SECRET', 'signing_secret'])}=")
        b.slot(self.secret_value(), "API_KEY").text("\n")
        user, pw, host = self.en.user_name(), self.password(), self.en.domain_word()
        scheme = self.rng.choice(["postgres", "postgresql", "mysql", "mongodb", "redis"])
        b.text(f"DATABASE_URL={scheme}://{user}:").slot(quote(pw, safe=""), "PASSWORD").text(
            f"@{host}.internal:5432/app\n"
        )
        b.text(f"{self.rng.choice(['DB_PASSWORD', 'password', 'PASSWORD', 'smtp_pwd'])}").text(
            self.rng.choice(["=", ": ", " = "])
        )
        b.slot(self.password().replace("#", "!"), "PASSWORD").text("\nDEBUG=true\n").text(self.config_lines())
        self._maybe_negative(b)
        return b.build()

    def _stack_trace(self) -> Sample:
        b = Builder()
        b.text("Getting this error:\nTraceback (most recent call last):\n").text(self.frames())
        b.text("ConnectionError: HTTPSConnectionPool(host='").slot(self.ip(), "IP_ADDRESS")
        b.text("', port=443): Max retries exceeded\nThe server at ").slot(self.ip(), "IP_ADDRESS").text(" is up. ")
        b.text(self.prose(0, 1))
        self._maybe_negative(b)
        return b.build()

    def _curl(self) -> Sample:
        b = Builder()
        host = self.en.domain_name()
        param = self.rng.choice(["access_token", "token", "api_key", "key", "sig", "X-Amz-Signature"])
        url = f"https://{host}/v1/items?limit=10&{param}={self._random(string.ascii_letters + string.digits, 32)}"
        b.text("why does this return 401?\ncurl -s '").slot(url, "URL_WITH_TOKEN").text("' \\\n")
        b.text("  -H 'Authorization: Bearer ").slot(self.jwt(), "JWT").text("'\n")
        if not self.dense:
            body = {self.en.word(): self.en.sentence() for _ in range(self.rng.randint(3, 10))}
            b.text("  -d '" + json.dumps(body, indent=2) + "'\n")
        if self.rng.random() < 0.5:
            secret = quote(self.password(), safe="")
            b.text("also tried ").slot(f"https://{self.en.user_name()}:{secret}@{host}/private", "URL_WITH_TOKEN")
        else:
            b.text("and my deploy key:\n").slot(self.private_key(), "PRIVATE_KEY")
        self._maybe_negative(b)
        return b.build()

    def _email_chat(self) -> Sample:
        b = Builder()
        faker = self.faker()
        b.text(f"Draft a reply to {faker.name()} <").slot(self.email(), "EMAIL")
        b.text(">, saying I'll call on ").slot(self.phone(), "PHONE").text(
            " tomorrow morning. Here is the thread:\n\n"
        ).text(self.prose(1, 4))
        self._maybe_negative(b)
        return b.build()

    def _payment(self) -> Sample:
        b = Builder()
        b.text("Pay the invoice with card ").slot(self.card(), "CREDIT_CARD")
        b.text(" or transfer to IBAN ").slot(self.iban(), "IBAN").text(". My SSN is ").slot(self.ssn(), "SSN")
        b.text(" for the tax form. ").text(self.prose(0, 2))
        self._maybe_negative(b)
        return b.build()

    def _plain(self) -> Sample:
        b = Builder()
        b.text(self.en.paragraph(nb_sentences=self.rng.randint(2, 6))).text(" ").text(self.prose(1, 5))
        for _ in range(self.rng.randint(1, 3)):
            before, value, kind = self.negative()
            b.text(f" Note: {before}").slot(value, f"KEEP:{kind}").text(".")
        return b.build()


def build_corpus(messages: int, seed: int = 7, dense: bool = False) -> list[Sample]:
    generator = CorpusGenerator(seed, dense)
    return [generator.message() for _ in range(messages)]
