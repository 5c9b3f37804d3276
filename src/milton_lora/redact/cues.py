"""Context cues: the words and symbols just before a candidate that decide what it is (`version 7.7.19.3`,
`ssh 10.0.0.5`, `call me on 347233020`, `invoice 5733-3266-1879`, `My SSN is 137355378`).

Every cue is matched on the text before the candidate lower-cased and reversed (`backwards`), where it is
one `match` at the start instead of a `search(...$)` that tries every position.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def backwards(text: str) -> str:
    """The text lower-cased and reversed: what every `Cue` reads, made once for all the cues asked of it."""
    return text.lower()[::-1]


# `is` in the languages of the default regions, between a cue and its value: `my PIN is`, `Mein Passwort ist`,
# `mon mot de passe est`, `c'est`, `mi contraseña es`, `la mia password è`, `o código é`, `het wachtwoord is`.
FOREIGN_COPULAS = r"(?:ist|war|lautet|est|c'est|c’est|était|es|era|è|é)"
COPULAS = rf"(?:is|was|are|{FOREIGN_COPULAS})"


def case_forms(word: str) -> set[str]:
    """A cue as people write it: lower, UPPER, Title and Sentence case (`social security`, `Social Security`)."""
    return {word, word.upper(), word.title(), word.capitalize()}


def stands_alone(text: str, start: int, end: int) -> bool:
    """The word at `start..end` is a whole word: no letter, digit or `_` touches it (`PIN`, not `PINE`, `spin` or
    `LED_PIN`)."""
    return not (
        (start and (text[start - 1].isalnum() or text[start - 1] == "_"))
        or (end < len(text) and (text[end].isalnum() or text[end] == "_"))
    )


def _trie_pattern(words: list[str]) -> str:
    r"""The whole words `words` as one regex branching letter by letter (`ab(?:c(?!\w)|(?!\w))` for `ab`, `abc`).

    It accepts what the plain alternation `abc(?!\w)|ab(?!\w)` does, but a cue of a hundred words is decided
    after reading a few characters instead of trying every word in turn (`IDENTIFIER`, read for every phone
    number and card, took half the time in a timeit comparison).
    """
    trie: dict[str, dict] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def branch(node: dict[str, dict]) -> str:
        options = [r"(?!\w)" if char == "" else re.escape(char) + branch(child) for char, child in sorted(node.items())]
        return options[0] if len(options) == 1 else f"(?:{'|'.join(options)})"

    return branch(trie)


class Cue:
    """Does a short text end with a cue (a word or symbol) followed by `tail`, ignoring case?

    `tail` and `raw` are written reversed (they are matched on `backwards` text); whole words have a
    word boundary before them.
    """

    def __init__(
        self,
        reversed_tail: str,
        words: Iterable[str],
        *,
        symbols: Iterable[str] = (),
        raw: Iterable[str] = (),
    ):
        cues = [_trie_pattern([word[::-1] for word in words])] if words else []
        cues += [re.escape(symbol[::-1]) for symbol in symbols]
        cues += list(raw)
        self._pattern = re.compile(f"{reversed_tail}(?:{'|'.join(cues)})")

    def ends(self, backwards_text: str) -> bool:
        """Whether the text that `backwards_text` is `backwards` of ends with this cue."""
        return self._pattern.match(backwards_text) is not None


_NUMBERING = ["section", "sec", "sec.", "§", "chapter", "ch.", "clause", "article", "art.", "paragraph", "para",
              "figure", "fig", "fig.", "table", "appendix", "annex", "step", "rule", "item", "oid", "rfc",
              "iso"]  # fmt: skip
# `version `, `upgrade to `, `v`, `==`, `Chrome/`, `section `: what precedes a number that looks like an IPv4 address.
VERSION = Cue(
    r"\s*[:=]?(?:\s+(?:ot|morf|ta))?\s*",
    ["version", "versions", "ver", "ver.", "v", "build", "firmware", "patch", "patched", "bump", "bumped", "pin",
     "pinned", "tag", "kernel", "driver", "release", "releases", "released", "update", "updated", "updates",
     "upgrade", "upgraded", "upgrades", "downgrade", "downgraded", "downgrades", *_NUMBERING],
    symbols=["==", ">=", "<=", "~=", "!=", "^", "~"],
    # `Chrome/120.0.6099.109`, `curl/8.4.0.1`; `python-3.11.7.1` (the dash glued to both, unlike a list's `- `)
    raw=[r"/(?=\w)", r"(?<![\s\S])-(?=[a-z])"],
)  # fmt: skip
# `host `, `ssh `, `connect to `, `@`: what precedes an IP address.
IP = Cue(
    r"\W{0,3}",
    ["ip", "host", "hostname", "server", "address", "addr", "ssh", "ping", "connect", "connected", "connecting",
     "gateway", "dns", "proxy", "to", "at", "via", "on", "node", "peer", "client"],
    symbols=["//", "@"],
)  # fmt: skip
# `order #`, `invoice no. `, `ISBN `, `bill #`, `Bestellnummer `, `Commande n° `: what precedes a number that is an
# identifier, not a phone or card.
IDENTIFIER = Cue(
    r"\s*[:=#]?\s*(?:si\s+)?(?:rebmun|\.?on|\.?rn|#)?\s*",
    ["order", "invoice", "ref", "reference", "isbn", "isbn-10", "isbn-13", "issn", "tracking", "ticket", "case", "po",
     "sku", "ean", "ean-13", "upc", "gtin", "barcode", "imei", "iccid", "serial", "model", "part", "item", "product",
     "account", "acct", "id", "no.", "commit", "sha", "rev", "revision", "bill", "billing", "receipt", "rechnung",
     "booking", "confirmation", "reservation", "transaction", "txn", "policy", "claim", "member", "customer",
     "employee", "student", "license", "licence", "vat", "tax", "zip", "postal", "postcode", "plz", "amount", "total",
     "balance", "bytes", "size", "count", "pid", "uid", "gid", "asin",
     # the same in the languages of the default regions
     "bestellnummer", "bestellung", "auftrag", "auftragsnummer", "kundennummer", "rechnungsnummer",
     "sendungsnummer", "commande", "facture", "colis", "suivi", "n°", "nº", "pedido", "factura", "envío", "envio",
     "ordine", "fattura", "spedizione", "bestelling", "factuur", "bestelnummer", "referenz", "mandat", "mandate",
     "référence", "referencia", "riferimento", "referentie", "kenmerk", "aktenzeichen", "vorgang"],
    symbols=["#"],
)  # fmt: skip
# `what's `, `solve `, `pages `, `lines `, `Rechne `: what precedes a calculation or a range, not a phone number.
CALCULATION = Cue(
    r"[\s:=(]*(?:[a-z:'’]+\s+){0,3}?",
    ["what's", "whats", "what is", "solve", "compute", "calculate", "calc", "evaluate", "simplify", "minus",
     "pages", "pp.", "lines", "rows", "seiten", "zeilen", "rechne", "berechne", "lignes", "calcule",
     "páginas", "líneas", "calcula", "pagine", "righe", "calcola", "regels", "bereken"],
)  # fmt: skip
# `call me on `, `her number is `, `"phone": "`, `TEL;TYPE=cell:`, `M: `: what makes a run of digits a phone number.
PHONE = Cue(
    r"[\s\"':=]*(?:si\s+)?(?:(?:no|ta)\s+(?:[a-z']+\s+){0,3})?(?:em\s+)?",
    ["call", "phone", "telephone", "tel", "tel.", "mobile", "cell", "cellphone", "whatsapp", "ring", "text", "sms",
     "fax", "reach", "number", "numbers", "contact", "landline", "hotline", "handy", "mobil", "telefon",
     "telefonnummer", "rufnummer", "téléphone", "portable", "telefono", "teléfono", "móvil", "celular", "msisdn",
     "phone_number"],
    raw=[r"(?<=:)[mtpf](?!\w)"],  # signature lines `M: +49 ...`, `T: ...`
)  # fmt: skip
# `SSN: `, `social security no. `, `My SSN is `, `recorded your SSN as `, `"ssn": "`.
SSN = Cue(
    r"[\s\"':=#(]*(?:[a-z']{1,8}\s+){0,3}[\s\"':=#(]*(?:rebmun|\.?on)?[\s\"':=#(]*",
    ["ssn", "ssns", "ssn#", "social security", "social security number", "soc sec", "ss#"],
)
