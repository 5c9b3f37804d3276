"""Chat messages that carry personal data: emails, phone numbers typed as people type them, cards, IBANs,
IP addresses and US social security numbers, in prose, CSV, JSON, logs and signatures.
"""

from __future__ import annotations

import random

from labeled import Builder, Sample

from .secrets import Maker
from .values import NAMES, SURNAMES, Values

PHONE_CUES = ["call me on ", "my number is ", "Tel.: ", "Mobil: ", "WhatsApp: ", "reach me at ", "phone ",
              "text me at ", "my driver's number ", "her cell is ", "ring the office on ", "M: "]  # fmt: skip


def email_message(v: Values, rng: random.Random) -> Sample:
    b = Builder()
    style = rng.randrange(5)
    email = v.email()
    if style == 0:
        b.text(f"forward it to {rng.choice(NAMES)} <").slot(email, "EMAIL").text(">")
    elif style == 1:
        b.text("mailto:").slot(email, "EMAIL").text("?subject=Invoice")
    elif style == 2:
        b.text("name,email,plan\n").text(f"{rng.choice(NAMES)} {rng.choice(SURNAMES)},").slot(email, "EMAIL")
        b.text(",pro\n")
    elif style == 3:
        b.text("reply from ").slot(email, "EMAIL").text(': "sounds good, see you Monday"')
    else:
        b.text('{"user": {"email": "').slot(email, "EMAIL").text('", "verified": true}}')
    return b.build()


def phone_message(v: Values, rng: random.Random) -> Sample:
    region, number, national = v.phone()
    b = Builder()
    style = rng.randrange(6)
    if style == 0 or (national and rng.random() < 0.5):
        b.text(rng.choice(PHONE_CUES)).slot(number, "PHONE").text(rng.choice(["", " after 6pm", ".", " (mobile)"]))
    elif style == 1:
        b.text(f"--\n{rng.choice(NAMES)} {rng.choice(SURNAMES)}\nHead of Ops\n").slot(number, "PHONE").text("\n")
    elif style == 2:
        b.text("name;phone;city\n").text(f"{rng.choice(NAMES)};").slot(number, "PHONE").text(";Lyon\n")
    elif style == 3:
        b.text('{"contact": {"phone": "').slot(number, "PHONE").text(f'", "country": "{region}"}}}}')
    elif style == 4:
        b.text("BEGIN:VCARD\nFN:").text(rng.choice(NAMES)).text("\nTEL;TYPE=cell:").slot(number, "PHONE")
        b.text("\nEND:VCARD")
    else:
        b.text("can you format ").slot(number, "PHONE").text(" for our CRM?")
    return b.build()


def card_message(v: Values, rng: random.Random) -> Sample:
    b = Builder()
    style = rng.randrange(4)
    if style == 0:
        b.text("card number ").slot(v.card(), "CREDIT_CARD").text(" exp 08/27 cvc 123")
    elif style == 1:
        b.text("why does stripe decline ").slot(v.card(), "CREDIT_CARD").text(" in test mode?")
    elif style == 2:
        b.text("order_id,card,amount\n").keep(str(rng.randint(10**5, 10**6)), "json_number").text(",")
        b.slot(v.card(), "CREDIT_CARD").text(",19.99\n")
    else:
        b.text("pay with my visa ").slot(v.card(), "CREDIT_CARD")
    return b.build()


def iban_message(v: Values, rng: random.Random) -> Sample:
    b = Builder()
    style = rng.randrange(3)
    if style == 0:
        b.text("please transfer the deposit to ").slot(v.iban(), "IBAN").text(f" ({rng.choice(NAMES)})")
    elif style == 1:
        b.text("Bank details:\nIBAN: ").slot(v.iban(), "IBAN").text("\nBIC: COBADEFFXXX\n")
    else:
        b.text("is ").slot(v.iban(), "IBAN").text(" a valid IBAN?")
    return b.build()


def ip_message(v: Values, rng: random.Random) -> Sample:
    b = Builder()
    style = rng.randrange(8)
    if style == 0:
        b.text("Failed password for root from ").slot(v.public_ipv4(), "IP_ADDRESS").text(" port 22 ssh2")
    elif style == 1:
        b.text("ssh ").text(rng.choice(["ubuntu", "pi", "ec2-user"])).text("@").slot(v.public_ipv4(), "IP_ADDRESS")
    elif style == 2:
        b.text("open http://").slot(v.private_ipv4(), "IP_ADDRESS").text(":8080/admin in the browser")
    elif style == 3:
        b.text("Host: [").slot(v.ipv6(), "IP_ADDRESS").text("]:443\nUser-Agent: curl/8.4.0")
    elif style == 4:
        b.text("Host: ").slot(v.ipv6(), "IP_ADDRESS").text("\nAccept: */*")
    elif style == 5:
        b.slot(v.public_ipv4(), "IP_ADDRESS").text(' - - [12/Mar/2025:10:14:03 +0000] "GET /login HTTP/1.1" 302 0')
    elif style == 6:
        b.text("X-Forwarded-For: ").slot(v.public_ipv4(), "IP_ADDRESS").text(", ").slot(v.private_ipv4(), "IP_ADDRESS")
    else:
        b.text("my home ip is ").slot(v.public_ipv4(), "IP_ADDRESS").text(", can you whitelist it")
    return b.build()


def ssn_message(v: Values, rng: random.Random) -> Sample:
    ssn = v.ssn()
    dashed = f"{ssn[:3]}-{ssn[3:5]}-{ssn[5:]}"
    b = Builder()
    style = rng.randrange(6)
    if style == 0:
        b.text("My SSN is ").slot(ssn, "SSN")
    elif style == 1:
        b.text("we recorded your SSN as ").slot(rng.choice([ssn, dashed]), "SSN").text(", please confirm")
    elif style == 2:
        b.text("first,last,ssn,dob\n").text(f"{rng.choice(NAMES)},{rng.choice(SURNAMES)},").slot(ssn, "SSN")
        b.text(",1984-02-11\n")
    elif style == 3:
        b.text("social security number: ").slot(f"{ssn[:3]} {ssn[3:5]} {ssn[5:]}", "SSN")
    elif style == 4:
        b.text('{"name": "').text(rng.choice(NAMES)).text('", "ssn": "').slot(dashed, "SSN").text('"}')
    else:
        b.text("W-2 shows ").slot(dashed, "SSN").text(" for box a")
    return b.build()


PERSONAL_MAKERS: list[tuple[Maker, int]] = [
    (email_message, 150), (phone_message, 420), (card_message, 160), (iban_message, 160), (ip_message, 200),
    (ssn_message, 130),
]  # fmt: skip
