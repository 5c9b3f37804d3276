"""PII and secret redaction: one engine used by the export on every message, by `milton-lora export --review`
and by `milton-lora redact`.

Modules: `labels` (labels, findings, replacing them), `anchors` (one Aho-Corasick pass), `providers` (key
formats), `credentials` (secrets known by their context: assignments, prose, command lines), `codes` (PINs,
door and backup codes, seed phrases, login pairs), `web` (URLs, emails, JWTs, private keys, IPv6), `numbers`
(IBANs, cards, SSNs, IPv4, phones), `documents` (identity document numbers after their cue), `national`
(national identity and tax numbers by their python-stdnum checksums), `cues` (the words that decide),
`validators`, `terms` (`redact.yaml`), `engine` (the `Redactor`), `review` (findings in context), `jsonl` (the
filter).

How it stays both accurate and fast (figures in the README, from `bench/redact_bench.py`):
- One Aho-Corasick pass over the text, one byte per character, finds every literal anchor at once; each
  detector then runs `match` at its anchors only, so the text is scanned once instead of once per detector.
- Numbers are found as runs of digits and separators on a byte-class copy of the text, and a run is
  handed only to the detectors its digit count allows.
- Every candidate is validated before it is replaced: Luhn and GS1 check digits, mod-97 and per-country
  length for IBANs, `phonenumbers`' numbering plans, octet ranges, Shannon entropy for secrets assigned to
  secret-looking names, placeholders (`sk-xxxx`, `<token>`, `${VAR}`) refused, and the context around it:
  the cue before a number (`version`, `invoice`, `call me on`, `SSN`), the key it is assigned to, the
  words around a password.
- Overlapping findings are resolved by priority (a JWT inside a URL is one `[URL_WITH_TOKEN]`).

Decisions (also in the README):
- URLs with credentials or a token query value become `[URL_WITH_TOKEN]` whole; database/broker
  connection strings keep their shape: the password becomes `[PASSWORD]`, an IP host `[IP_ADDRESS]`.
- A bare four-part number (`10.1.2.3`) is an IP address unless a version or numbering cue precedes it
  (`version`, `v`, `upgrade to`, `==`, `Chrome/`, `section`), or it follows one that had it (`... vs`);
  all of 127.0.0.0/8, unspecified addresses and netmasks are kept.
- Phone numbers in national format are accepted when valid in one of `DEFAULT_REGIONS`, or in any form
  after a phone cue (`call me on`, `"phone":`, `Tel.:`); with `+` they need a possible length for their
  country code. Barcodes, ZIP+4 codes, ISBNs, numbers in calculations and values of non-phone keys are not
  phone numbers.
- An IBAN is read to its country's exact length and kept when its mod-97 check holds, whatever follows.
- A secret-looking name is recognised in lower, UPPER, Capitalized, Title and camel case (`apiKey`,
  `ClientSecret`, `passPhrase`); names of ids, URLs and lengths (`private_key_id`, `token_url`) are not.
"""

from milton_lora.redact.engine import Redactor, redact_text
from milton_lora.redact.jsonl import redact_jsonl_lines
from milton_lora.redact.labels import CUSTOM, DEFAULT_REGIONS, LABELS, Finding, Redaction
from milton_lora.redact.review import InContext, in_context
from milton_lora.redact.terms import PersonalTerms, Term

__all__ = [
    "CUSTOM",
    "DEFAULT_REGIONS",
    "LABELS",
    "Finding",
    "InContext",
    "PersonalTerms",
    "Redaction",
    "Redactor",
    "Term",
    "in_context",
    "redact_jsonl_lines",
    "redact_text",
]
