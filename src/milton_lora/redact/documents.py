"""Identity document numbers, known by the words before them: passports, driving licences, identity cards, and
the national identity and tax numbers people type into forms (UK National Insurance and NHS numbers, the
Canadian SIN, the US ITIN, bank account numbers, Aadhaar, the German Steuer-ID, Spanish DNI/NIE, Brazilian
CPF, Dutch BSN, Italian codice fiscale...).

They have no checksum shared across countries and look like order numbers without their cue, so only the cue
decides: `passport number C01X00T47`, `my NI number is QQ 12 34 56 C`, `NHS no: 943 476 5919`. The value must
hold at least five digits and no lower-case letter (`passport: expired`, `tax id pending` stay); it is
redacted as ID_NUMBER. The US SSN keeps its own label and validation (`numbers`). A bank account number is
found after the word `bank account`, or after a routing number or sort code (`routing 021000021 account
483920174`), which itself is public and stays.
"""

from __future__ import annotations

import re

from milton_lora.redact.cues import COPULAS, case_forms, stands_alone
from milton_lora.redact.labels import Span
from milton_lora.redact.national import checksum_holds

# Written in lower, UPPER, Title or Sentence case, `id` also as `ID` (`Passport`, `national ID`, `Steuer-ID`).
DOCUMENT_CUES = ["passport", "driver's license", "drivers license", "driver license", "driver's licence",
                 "driving licence", "driving license", "national insurance", "national id", "id card",
                 "identity card", "identity number", "personalausweis", "steuer-id", "tax id", "tax number",
                 "taxpayer id", "itin", "bank account", "aadhaar", "codice fiscale", "social insurance number",
                 "personnummer", "personal id", "residence permit", "tax file number", "henkilötunnus",
                 "aadhar", "steuerid", "identificación fiscal", "numéro fiscal",
                 # the same in the languages of the default regions
                 "reisepass", "reisepassnummer", "passnummer", "ausweisnummer", "führerschein",
                 "führerscheinnummer", "steuernummer", "steueridentifikationsnummer", "sozialversicherungsnummer",
                 "versicherungsnummer", "passeport", "carte d'identité", "permis de conduire", "sécurité sociale",
                 "pasaporte", "carnet de conducir", "seguridad social", "passaporto", "carta d'identità",
                 "patente di guida", "paspoort", "rijbewijs", "burgerservicenummer", "passaporte",
                 "carteira de identidade"]  # fmt: skip
# A bank's own number, public, before the account number that is not: `routing 021000021 account 483920174`.
BANK_CODE_CUES = ["routing", "routing number", "sort code", "bsb", "aba"]
# Short words that are ordinary words in lower case (`a tin of beans`): their capitals only (`NI number`).
CAPITALS_ONLY_CUES = [
    "NI",
    "NHS",
    "SIN",
    "TIN",
    "NINO",
    "BSN",
    "DNI",
    "NIE",
    "NIF",
    "CPF",
    "PESEL",
    "TFN",
    "NRIC",
    "FIN",
    "PAN",
    "HETU",
    "NPI",
    "UID",
    "IdNr",
]


def cue_spellings() -> list[str]:
    """Every spelling of every cue that the anchor pass looks for."""
    spellings = set(CAPITALS_ONLY_CUES)
    for cue in (*DOCUMENT_CUES, *BANK_CODE_CUES):
        for written in case_forms(cue):
            spellings.add(written)
            spellings.add(re.sub(r"\b[Ii]d\b", "ID", written))
    return sorted(spellings)


_VALUE = re.compile(
    rf"""(?x)
    (?:[ -](?:number|no\.?|nr\.?|num|\#|id|card(?:[ ]number)?)(?!\w))?
    (?:[^\S\n]+{COPULAS})?(?:[^\S\n]*[:=\#][^\S\n]*|[^\S\n]+)
    ["'`]?
    (?P<value>
        (?:[A-Z]{{1,2}}|\d{{1,6}})(?:[ ](?:\d{{1,6}}|[A-Z]))(?:[ ]\d{{1,6}}){{1,5}}(?:[ ][A-Z])?(?![\w-]|[./]\w)
            # QQ 12 34 56 C, 943 476 5919, 1 85 05 78 006 084 36, 12 150180 A 123
        |[A-Z0-9](?:[A-Z0-9]|[-./](?=[A-Z0-9])){{4,19}}(?![\w-])                # C01X00T47, 123.456.789-09
    )
    """
)
_DIGIT = re.compile(r"\d")
# An all-digit number a few words after its cue (`Steuer-ID of the client 65929970489`, `TFN for Sam: 123 456
# 782`): only its checksum (`national.checksum_holds`) tells it from the other numbers of the sentence.
_CHECKSUMMED_AFTER_WORDS = re.compile(
    r"(?:[^\S\n]+[\w'’.-]+){0,4}?[^\S\n]*[:=#]?[^\S\n]*[\"'`]?(?P<value>\d(?:[ -]?\d){8,11})(?![\w-]|[.,]\d)"
)
# Dates, year ranges and all-numeric dotted versions: `ID card 2024-01-05`, `national insurance 2024/25`,
# `passport 0.7.0.12345` (the Passport.js package).
_NOT_AN_ID = re.compile(r"\d{4}[-/.]\d{1,2}(?:[-/.]\d{1,2})?|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d+(?:\.\d+){2,}")
_ACCOUNT_AFTER_BANK_CODE = re.compile(
    r"""(?xi)
    [^\S\n]*[:\#]?[^\S\n]*\d[\d -]{4,12}\d                              # the bank code
    [^\S\n]*[,;/]?[^\S\n]*(?:and[^\S\n]+)?(?:acc(?:oun)?t|a/c)(?:[^\S\n]*(?:number|no\.?|nr\.?|\#))?
    [^\S\n]*[:\#]?[^\S\n]*(?P<value>\d{6,17})(?![\w-])
    """
)


def identity_numbers(text: str, cues: list[tuple[int, int, None]]) -> list[Span]:
    """The number after each identity document cue (`cues`: start, end of each cue word in the text)."""
    found = []
    for start, end, _ in cues:
        if not stands_alone(text, start, end):
            continue
        if text[start:end].lower() in BANK_CODE_CUES:
            match = _ACCOUNT_AFTER_BANK_CODE.match(text, end)
        else:
            match = _VALUE.match(text, end)
            if match is None or not _DIGIT.search(match.group("value")):
                match = _CHECKSUMMED_AFTER_WORDS.match(text, end)
                if match is not None and not checksum_holds(match.group("value")):
                    continue
        if match is None or len(_DIGIT.findall(match.group("value"))) < 5 or _NOT_AN_ID.fullmatch(match.group("value")):
            continue
        found.append((match.start("value"), match.end("value"), "ID_NUMBER"))
    return found
