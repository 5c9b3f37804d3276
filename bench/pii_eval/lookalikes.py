"""Chat messages full of hard negatives: numbers, ids, versions, hashes and words that look like PII or
secrets and must come out untouched. Every value is labeled `KEEP:<kind>`.
"""

from __future__ import annotations

import random
import string
import uuid

from labeled import Builder, Sample

from .facts import ALNUM, BASE64, HEX
from .secrets import Maker
from .values import NAMES, WORDS, Values, gtin_complete, isbn13_complete


def barcodes(v: Values, rng: random.Random) -> Sample:
    ean = gtin_complete(rng.choice(["400", "401", "590", "800", "871", "500", "376"]) + v.chars(string.digits, 9))
    upc = gtin_complete(rng.choice(["0", "6", "7", "8"]) + v.chars(string.digits, 10))
    b = Builder()
    style = rng.randrange(3)
    if style == 0:
        b.text("EAN ").keep(ean, "ean13").text(" and UPC ").keep(upc, "upc").text(" both scan as the same product")
    elif style == 1:
        b.text("sku,ean,qty\nTSHIRT-M,").keep(ean, "ean13").text(",12\nMUG-01,").keep(upc, "upc").text(",40\n")
    else:
        b.text("the barcode under the box says ").keep(ean, "ean13")
    return b.build()


def isbns(v: Values, rng: random.Random) -> Sample:
    isbn = isbn13_complete(rng.choice(["978", "979"]) + v.chars(string.digits, 9))
    group = rng.choice([0, 1, 2, 3])  # the registration group's extra digits; the publisher gets four
    hyphenated = "-".join([isbn[:3], isbn[3 : 4 + group], isbn[4 + group : 8 + group], isbn[8 + group : 12], isbn[12]])
    b = Builder()
    if rng.random() < 0.5:
        b.text("ISBN ").keep(rng.choice([isbn, hyphenated]), "isbn13")
    else:
        b.text(f"I'm reading '{rng.choice(WORDS).title()} of {rng.choice(WORDS).title()}' (").keep(hyphenated, "isbn13")
        b.text("), any similar books?")
    return b.build()


def zip_codes(v: Values, rng: random.Random) -> Sample:
    zip4 = f"{rng.randint(10000, 99950)}-{rng.randint(1000, 9999)}"
    return Builder().text(f"ship to 12 {rng.choice(WORDS).title()} St, Phoenix, AZ ").keep(zip4, "zip4").build()


def loopback(v: Values, rng: random.Random) -> Sample:
    address = f"127.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    b = Builder()
    if rng.random() < 0.5:
        b.text("/etc/hosts has\n").keep(address, "loopback").text("\tmyhost\n")
    else:
        b.text("dnsmasq listens on ").keep(address, "loopback").text(" port 53")
    return b.build()


def versions(v: Values, rng: random.Random) -> Sample:
    def four() -> str:
        return f"{rng.randint(1, 20)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}.{rng.randint(0, 250)}"

    b = Builder()
    style = rng.randrange(4)
    if style == 0:
        b.text("version ").keep(four(), "version4").text(" vs ").keep(four(), "version4").text(", which is newer?")
    elif style == 1:
        b.text("upgrade from ").keep(four(), "version4").text(" to ").keep(four(), "version4")
    elif style == 2:
        b.text("Mozilla/5.0 (X11; Linux x86_64) Chrome/").keep(four(), "version4").text(" Safari/537.36")
    else:
        b.text("firmware ").keep(four(), "version4").text(" bricked the router")
    return b.build()


def arithmetic(v: Values, rng: random.Random) -> Sample:
    b = Builder()
    style = rng.randrange(3)
    if style == 0:
        b.keep(f"{rng.randint(200, 999)}-{rng.randint(1000, 9999)}", "arithmetic").text(" = ?")
    elif style == 1:
        b.text(f"({rng.randint(200, 999)}) * ").keep(f"{rng.randint(200, 999)}-{rng.randint(1000, 9999)}", "arithmetic")
    else:
        b.text("what is ").keep(str(rng.randint(10**9, 10**10 - 1)), "arithmetic").text(f" / {rng.randint(2, 99)}?")
    return b.build()


def json_numbers(v: Values, rng: random.Random) -> Sample:
    b = Builder().text("{")
    b.text(f'"{rng.choice(["client_id", "user_id", "order_id", "account_number", "customer"])}": "')
    b.keep(str(rng.randint(10**9, 10**10 - 1)), "json_number").text('", ')
    b.text(f'"{rng.choice(["amount", "total_cents", "bytes", "views"])}": ')
    b.keep(str(rng.randint(10**9, 10**10 - 1)), "json_number").text("}")
    return b.build()


def invoice_numbers(v: Values, rng: random.Random) -> Sample:
    number = f"{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}"
    lead = rng.choice(["invoice ", "Bill no. ", "bill #", "Rechnung Nr. ", "reference "])
    return Builder().text(f"{lead}").keep(number, "invoice").text(" is overdue").build()


def hex_ids(v: Values, rng: random.Random) -> Sample:
    b = Builder()
    style = rng.randrange(3)
    if style == 0:
        b.text('"private_key_id": "').keep(v.chars(HEX, 40), "hex_key_id").text('",')
    elif style == 1:
        b.text('{"kid": "').keep(v.chars(HEX, 32), "hex_key_id").text('", "alg": "RS256"}')
    else:
        b.text("key_id = ").keep(v.chars(HEX, 16), "hex_key_id")
    return b.build()


def hex_hosts(v: Values, rng: random.Random) -> Sample:
    host = rng.choice([
        f"my-app-{v.chars(HEX, 7)}.firebaseapp.com", f"api-{v.chars(HEX, 7)}.herokuapp.com",
        f"pr-{rng.randint(10, 999)}-{v.chars(HEX, 7)}.preview.example.dev", f"{v.chars(HEX, 12)}.ngrok-free.app",
    ])  # fmt: skip
    return Builder().text("deployed to ").keep(host, "hex_host").text(", check it").build()


def pass_words(v: Values, rng: random.Random) -> Sample:
    phrase = rng.choice([
        "bypass the cache", "bypass proxy for local addresses", "we pass the tests now", "pass rate is 92%",
        "pass it to the callback", "password reset link expired", "the password manager syncs", "forgot password?",
        "password must be at least 12 characters", "the password field is empty", "pass through the tunnel",
        "compass heading is off", "a boarding pass", "pass --help to see flags", "first pass over the data",
    ])  # fmt: skip
    return Builder().text("hmm, ").keep(phrase, "pass_word").text(rng.choice([".", " again", " - any idea?"])).build()


def ports_in_flags(v: Values, rng: random.Random) -> Sample:
    b = Builder()
    style = rng.randrange(4)
    if style == 0:
        b.text("ssh -p ").keep(str(rng.choice([2222, 22022, 8022])), "port_flag").text(" deploy@bastion")
    elif style == 1:
        b.text("psql -h db -p ").keep(str(rng.choice([5433, 6432])), "port_flag").text(" -U app")
    elif style == 2:
        b.text("docker run -p ").keep("8080:80", "port_flag").text(" nginx")
    else:
        b.text("mysql -u root -p ").keep("shop", "db_name").text("   # it prompts for the password")
    return b.build()


def masked_and_placeholders(v: Values, rng: random.Random) -> Sample:
    value = rng.choice(["********", "${DB_PASSWORD}", "<your password>", "os.environ['DB_PASSWORD']", "changeme_later",
                        "{{ vault_db_password }}", "$PGPASSWORD", "REDACTED", "xxxxxxxx"])  # fmt: skip
    key = rng.choice(["password: ", "DB_PASSWORD=", "api_key = ", "token: "])
    if value == "changeme_later":
        value = "%(password)s"
    return Builder().text(key).keep(value, "placeholder").build()


def public_keys(v: Values, rng: random.Random) -> Sample:
    b = Builder()
    style = rng.randrange(3)
    if style == 0:
        b.text("publishable key: ").keep("pk_live_" + v.chars(ALNUM, 24), "public_key")
    elif style == 1:
        b.text('"client_id": "').keep(str(uuid.UUID(int=rng.getrandbits(128), version=4)), "uuid").text('"')
    else:
        b.text('"integrity": "').keep("sha512-" + v.chars(BASE64, 86) + "==", "integrity_hash").text('"')
    return b.build()


def hashes_and_digests(v: Values, rng: random.Random) -> Sample:
    b = Builder()
    style = rng.randrange(3)
    if style == 0:
        b.text("image digest ").keep("sha256:" + v.chars(HEX, 64), "digest")
    elif style == 1:
        b.text("fixed in ").keep(v.chars(HEX, rng.choice([7, 10, 40])), "git_sha")
    else:
        b.text("md5sum is ").keep(v.chars(HEX, 32), "digest")
    return b.build()


def colons(v: Values, rng: random.Random) -> Sample:
    mac = ":".join(v.chars("0123456789ABCDEF", 2) for _ in range(6))
    b = Builder()
    style = rng.randrange(3)
    if style == 0:
        b.text("MAC address ").keep(mac, "mac_address")
    elif style == 1:
        b.text("role arn ").keep(f"arn:aws:iam::{rng.randint(10**11, 10**12 - 1)}:role/deploy", "arn")
    else:
        b.text("elapsed ").keep(f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}", "time")
        b.text(", use ").keep("std::chrono::steady_clock", "code")
    return b.build()


def everyday_numbers(v: Values, rng: random.Random) -> Sample:
    b = Builder()
    style = rng.randrange(6)
    if style == 0:
        b.text("it costs ").keep(f"${rng.randint(1, 99)},{rng.randint(100, 999)}.{rng.randint(10, 99)}", "price")
    elif style == 1:
        b.text("IMEI ").keep(v.luhn_imei(), "imei")
    elif style == 2:
        b.text("created_at ").keep(str(rng.randint(1_600_000_000, 1_800_000_000)), "unix_timestamp")
    elif style == 3:
        b.text("coordinates ").keep(f"{rng.uniform(-80, 80):.6f}, {rng.uniform(-170, 170):.6f}", "coordinates")
    elif style == 4:
        b.text("see section ").keep(f"{rng.randint(1, 9)}.{rng.randint(1, 9)}.{rng.randint(1, 9)}.{rng.randint(1, 9)}",
                                    "section_number")  # fmt: skip
    else:
        b.text("population ").keep(f"{rng.randint(1, 40)},{rng.randint(100, 999)},{rng.randint(100, 999)}", "count")
    return b.build()


def ordinary_text(v: Values, rng: random.Random) -> Sample:
    b = Builder()
    style = rng.randrange(5)
    if style == 0:
        b.text("docs: ").keep(f"https://docs.example.dev/guide/{rng.choice(WORDS)}?page=2&sort=asc", "url")
    elif style == 1:
        b.text("git clone ").keep(f"git@github.com:{rng.choice(NAMES).lower()}/dotfiles.git", "git_remote")
    elif style == 2:
        b.text("mail goes to ").keep(rng.choice(["root@localhost", "postmaster@localhost"]), "user_at_localhost")
    elif style == 3:
        date = f"{rng.randint(2020, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        b.text("meeting on ").keep(date, "date")
        b.text(" at ").keep(f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}", "time")
    else:
        b.text("pip install ").keep(f"torch=={rng.randint(1, 3)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}", "version")
    return b.build()


LOOKALIKE_MAKERS: list[tuple[Maker, int]] = [
    (barcodes, 120), (isbns, 120), (zip_codes, 100), (loopback, 100), (versions, 120), (arithmetic, 120),
    (json_numbers, 120), (invoice_numbers, 120), (hex_ids, 100), (hex_hosts, 100), (pass_words, 150),
    (ports_in_flags, 100), (masked_and_placeholders, 100), (public_keys, 90), (hashes_and_digests, 90),
    (colons, 90), (everyday_numbers, 150), (ordinary_text, 120),
]  # fmt: skip
