"""Tables pasted into a message (CSV, TSV, `;`- or `|`-separated): a header that names a column (`ssn`,
`phone`) is the cue for every value under it, with or without dashes (`name,ssn,dob` / `Ann,137355378,...`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from milton_lora.redact.labels import Span
from milton_lora.redact.validators import ssn_ok

_DELIMITERS = ",;\t|"
_SSN_HEADER = re.compile(r"(?i)[\"']?(?:ssn|ssns|social[ _]security(?:[ _](?:number|no))?|ss#|ssn#)[\"']?")
_SSN_CELL = re.compile(r"(\d{3})[- ]?(\d{2})[- ]?(\d{4})")
_PHONE_HEADER = re.compile(
    r"(?i)[\"']?(?:phone|telephone|tel\.?|mobile|cell|cellphone|fax|whatsapp|handy|telefon|"
    r"(?:phone|mobile|contact|cell)[ _]?(?:number|no\.?|#))[\"']?"
)
_PHONE_CELL = re.compile(r"\+?\(?\d[\d ().\-/]{5,22}\d")
HEADER_WORDS = ["phone", "tel", "mobile", "cell", "fax", "whatsapp", "handy", "telefon"]
_HEADER_WORD = re.compile(r"[A-Za-z_# .]{0,20}?(?=[,;\t|\n\"']|\Z)|")
_FIELD_ENDS = frozenset([",", ";", "\t", "|", "\n", '"', "'", ""])


def ssn_columns(text: str, headers: list[int]) -> list[Span]:
    """SSNs under an `ssn` / `social security number` header."""
    found: list[Span] = []
    for start, end, cell in _cells_under(text, headers, _SSN_HEADER):
        match = _SSN_CELL.fullmatch(cell)
        if match and ssn_ok(*match.groups()):
            found.append((start, end, "SSN"))
    return found


def phone_columns(text: str, headers: list[int]) -> list[Span]:
    """Phone numbers under a `phone` / `tel` / `mobile` header, in any format of 7 to 15 digits."""
    found: list[Span] = []
    for start, end, cell in _cells_under(text, headers, _PHONE_HEADER):
        if _PHONE_CELL.fullmatch(cell) and 7 <= sum(char.isdigit() for char in cell) <= 15:
            found.append((start, end, "PHONE"))
    return found


def _cells_under(text: str, headers: list[int], header: re.Pattern[str]) -> Iterator[tuple[int, int, str]]:
    """Each cell (start, end, stripped text) in the column whose header, on the line of an anchor, `header` names."""
    seen = set()
    for pos in headers:
        if text[pos - 1 : pos].isalnum() or not _ends_a_field(text, pos):
            continue  # inside a word (`hotel`), or a word of a sentence (`My SSN is`): no header
        line_start = text.rfind("\n", 0, pos) + 1
        if line_start in seen:
            continue
        line_end = _line_end(text, pos)
        line = text[line_start:line_end]
        delimiter = next((d for d in _DELIMITERS if d in line), None)
        if delimiter is None:
            continue
        names = line.split(delimiter)
        column = next((i for i, name in enumerate(names) if header.fullmatch(name.strip())), None)
        if column is None:
            continue
        seen.add(line_start)
        yield from _column(text, line_end, delimiter, column, len(names))


def _ends_a_field(text: str, pos: int) -> bool:
    """The word at `pos` (with what follows it in a header name: `ssn_number`, `Phone No.`) ends a field."""
    end = _HEADER_WORD.match(text, pos).end()
    return text[end : end + 1] in _FIELD_ENDS


def _column(text: str, offset: int, delimiter: str, column: int, width: int) -> Iterator[tuple[int, int, str]]:
    """Cells of `column` in the rows after a header, until a row of another width (or the end of the table)."""
    while offset < len(text) and text[offset] == "\n":
        row_start = offset + 1
        offset = _line_end(text, row_start)
        fields = text[row_start:offset].split(delimiter)
        if len(fields) != width:
            return
        cell_start = row_start + sum(len(field) + 1 for field in fields[:column])
        raw = fields[column]
        value = raw.strip().strip("\"'")
        if value:
            start = cell_start + raw.index(value)
            yield start, start + len(value), value


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end == -1 else end
