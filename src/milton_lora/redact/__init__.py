"""PII and secret redaction: one engine used by the export on every message and by `milton-lora redact`.

How it stays both accurate and fast (figures in the README, from `bench/redact_bench.py`):
- One Aho-Corasick pass (`ahocorasick_rs`) over the text, one byte per character, finds every literal
  anchor at once: `@`, `://`, `::`, `eyJ`, `-----BEGIN`, each provider's key prefix, `bearer`, `ssn`,
  and the secret-looking names (`password`, `token`, `api_key`...). Each detector then runs `match`
  at its anchors only, so the text is scanned once instead of once per detector.
- Numbers are found as runs of digits and separators on a byte-class copy of the text (`_NUMERIC_RUN`,
  IBAN starts), and a run is handed only to the detectors its digit count allows (cards need 12
  digits, SSNs 9, phones 7; IPv4 needs three dots).
- Validation is done on precompiled patterns (one union of the regions' national number patterns, a
  table for entropy), and the cyclic garbage collector is paused while a batch is scanned.
- Every candidate is validated before it is replaced: Luhn for cards, mod-97 and per-country length
  for IBANs, `phonenumbers`' numbering plans for phone numbers, octet ranges and context for IPs,
  Shannon entropy for secrets assigned to secret-looking names, placeholders (`sk-xxxx`, `<token>`) refused.
- Overlapping findings are resolved by priority (a JWT inside a URL is one `[URL_WITH_TOKEN]`).

Decisions (also in the README):
- URLs with credentials: web URLs (`https://user:pass@host/...`) become `[URL_WITH_TOKEN]` whole;
  database/broker connection strings (`postgres://user:pass@host/db`) keep their shape and only the
  password becomes `[PASSWORD]`.
- A bare four-part number (`10.1.2.3`) is an IP address unless a version cue precedes it
  (`version`, `v`, `release`, `upgrade to`, `==`, `@`...). Loopback/unspecified addresses and netmasks
  are kept.
- Phone numbers in national format are accepted when valid in one of `DEFAULT_REGIONS`; numbers
  written with `+` or `00` are validated against their own country code. A bare run of fewer than 10
  digits is a phone number only after a phone cue (`call me on`, `number is`, `tel`...).
- An IBAN is read to its country's exact length and kept when its mod-97 check holds, whatever follows.
- A secret-looking name is recognised in lower, UPPER, Capitalized, Title and camel case (`apiKey`,
  `ClientSecret`, `passPhrase`); other mixed spellings (`pAsSwOrD`) are not.
"""

from milton_lora.redact.engine import Redactor, redact_text
from milton_lora.redact.jsonl import redact_jsonl_lines
from milton_lora.redact.patterns import DEFAULT_REGIONS, LABELS, Finding, Redaction

__all__ = ["DEFAULT_REGIONS", "LABELS", "Finding", "Redaction", "Redactor", "redact_jsonl_lines", "redact_text"]
