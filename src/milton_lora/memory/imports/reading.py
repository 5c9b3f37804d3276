"""Reading an export file as a stream of records, in bounded memory whatever the file holds.

A JSON export (a list of conversations, or one conversation object) is parsed event by event with
`ijson` and built one record at a time; a JSONL file is read line by line. Whatever the input, what is
held at once is one record, so the limits below bound memory (peak RSS stays under 1 GB; see
`bench/import_memory.py`):
- a JSON record (one conversation) over `MAX_RECORD_BYTES` stops the file with an error that names where:
  it is no conversation a person had, and nothing after it can be parsed without holding it; a JSONL
  line over it is a bad record (skipped, reported), read past without being held;
- values nested deeper than `MAX_DEPTH`, or more than `MAX_RECORD_VALUES` values in one record (tiny
  values cost far more as objects than as text), make that record a bad record (skipped, reported);
- a zip member is read only when it declares at most `MAX_MEMBER_BYTES` and expands at most
  `MAX_EXPANSION` times (JSON text typically compresses 5-20x; far more is a zip bomb).
Text is UTF-8, with or without a byte-order mark; anything else (UTF-16, Latin-1) is refused, naming the
byte offset of the first bad byte and asking for the file saved as UTF-8.
"""

from __future__ import annotations

import codecs
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import ijson

from milton_lora.errors import MiltonError

MAX_RECORD_BYTES = 128 * 2**20
MAX_MEMBER_BYTES = 8 * 2**30
MAX_EXPANSION = 100
MAX_DEPTH = 64
MAX_RECORD_VALUES = 2_000_000  # a long real conversation holds ~100,000; a million `{}` would be 64 MB of objects
EXPORT_MEMBER = "conversations.json"
# yajl scans a token that spans reads again from its start on each read: big reads keep a long string's cost
# near linear (128 MB in 64 KB reads took 185 s; in 4 MB reads, seconds).
_CHUNK = 4 * 2**20


@dataclass
class Record:
    """One conversation as read: its 1-based place in the file (`line` for JSONL), and the value or why not."""

    index: int
    value: Any = None
    problem: str | None = None
    line: int | None = None

    @property
    def where(self) -> str:
        return f"line {self.line}" if self.line is not None else f"conversation {self.index}"


class _TooLarge(Exception):
    pass


class _Utf8Stream:
    """The source's bytes, checked as UTF-8 as they pass (a leading BOM dropped); counts what was read since
    `mark()` so that a record over MAX_RECORD_BYTES stops the read before it is held."""

    def __init__(self, source: IO[bytes], label: str):
        self._source, self.label = source, label
        head = source.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise MiltonError(f"{label}: UTF-16 text; save it as UTF-8 and import again")
        skip = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._pending, self._unread = head[skip:], b""
        self.offset = self._marked = skip

    def mark(self) -> None:
        self._marked = self.offset

    def peek(self) -> bytes:
        """The first byte that is not whitespace (b"" for an empty file); nothing is consumed but whitespace."""
        while data := self.read():
            if stripped := data.lstrip():
                self._unread = data
                return stripped[:1]
        return b""

    def read(self, size: int = _CHUNK) -> bytes:
        if size == 0:  # ijson asks for nothing to learn whether the stream is bytes or text
            return b""
        if self._unread:
            data, self._unread = self._unread, b""
            return data
        if self.offset - self._marked > MAX_RECORD_BYTES:
            raise _TooLarge
        data = self._pending + self._source.read(max(1, min(size, _CHUNK) - len(self._pending)))
        self._pending = b""
        try:
            self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise MiltonError(
                f"{self.label}: not UTF-8 text (byte {self.offset + exc.start}: {exc.reason}); "
                "save it as UTF-8 and import again"
            ) from None
        self.offset += len(data)
        return data


@contextmanager
def open_export(path: Path) -> Iterator[_Utf8Stream]:
    """The export's text: the file itself, or the conversations.json in a zip (recognised by content)."""
    if not path.is_file():
        raise MiltonError(f"{path}: no such file; pass a conversations.json, export .zip or .jsonl file")
    if not zipfile.is_zipfile(path):
        with path.open("rb") as raw:
            yield _Utf8Stream(raw, str(path))
        return
    try:
        with zipfile.ZipFile(path) as archive:
            member = _export_member(archive, path)
            with archive.open(member) as raw:
                yield _Utf8Stream(raw, f"{path}:{member.filename}")
    except (zipfile.BadZipFile, EOFError) as exc:
        raise MiltonError(f"{path}: a damaged zip archive ({exc}); download the export again") from None


def _export_member(archive: zipfile.ZipFile, path: Path) -> zipfile.ZipInfo:
    members = [i for i in archive.infolist() if i.filename.rsplit("/", 1)[-1] == EXPORT_MEMBER]
    if not members:
        raise MiltonError(f"{path}: the archive has no {EXPORT_MEMBER}; is it a ChatGPT or claude.ai data export?")
    member = min(members, key=lambda i: len(i.filename))
    if member.file_size > MAX_MEMBER_BYTES:
        raise MiltonError(
            f"{path}: {member.filename} would expand to {member.file_size / 2**30:.1f} GiB, over the "
            f"{MAX_MEMBER_BYTES // 2**30} GiB limit; split the export and import the parts"
        )
    ratio = member.file_size / max(member.compress_size, 1)
    if ratio > MAX_EXPANSION:
        raise MiltonError(
            f"{path}: {member.filename} expands {ratio:.0f}x (limit {MAX_EXPANSION}x); real exports compress far "
            "less, so this archive is refused"
        )
    return member


def json_records(stream: _Utf8Stream) -> Iterator[Record]:
    """The records of a JSON export: the items of a top-level list, or the one top-level object."""
    top = stream.peek()
    if top not in (b"[", b"{"):
        raise MiltonError(f"{stream.label}: expected a JSON list of conversations or one conversation object")
    events = ijson.basic_parse(stream, buf_size=_CHUNK, use_float=True)
    try:
        if top == b"[":
            next(events)
        for index, (event, value) in enumerate(events, start=1):
            if event == "end_array" and top == b"[":
                break
            yield _built(index, event, value, events)
            stream.mark()
        for _ in events:  # the parser still checks that nothing follows the list
            pass
    except ijson.JSONError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "invalid JSON"
        raise MiltonError(
            f"{stream.label}: invalid JSON near byte {stream.offset} ({reason}); nothing was imported"
        ) from None
    except _TooLarge:
        raise _too_large(stream) from None


def _too_large(stream: _Utf8Stream) -> MiltonError:
    return MiltonError(
        f"{stream.label}: a record near byte {stream.offset} is over {MAX_RECORD_BYTES // 2**20} MB, larger than any "
        "conversation a person has; nothing was imported (remove it, or check that this is a conversation export)"
    )


_OPEN = {"start_map": dict, "start_array": list}
_CLOSE = {"end_map", "end_array"}


def _built(index: int, event: str, value: Any, events: Iterator[tuple[str, Any]]) -> Record:
    """The value that starts with (event, value), built from the events; a too-deep one is read past, not built."""
    if event not in _OPEN:
        return Record(index, value)
    stack: list[Any] = [_OPEN[event]()]
    keys: list[str | None] = [None]
    values = 0
    while stack:
        event, value = next(events)
        values += 1
        if values > MAX_RECORD_VALUES:
            _skip_rest(events, len(stack) - (event in _CLOSE) + (event in _OPEN))
            return Record(index, problem=f"holds more than {MAX_RECORD_VALUES:,} values")
        if event == "map_key":
            keys[-1] = value
            continue
        if event in _CLOSE:
            done = stack.pop()
            keys.pop()
            if not stack:
                return Record(index, done)
            _put(stack[-1], keys[-1], done)
        elif event in _OPEN:
            if len(stack) >= MAX_DEPTH:
                _skip_rest(events, len(stack) + 1)
                return Record(index, problem=f"nested more than {MAX_DEPTH} levels deep")
            stack.append(_OPEN[event]())
            keys.append(None)
        else:
            _put(stack[-1], keys[-1], value)
    raise AssertionError("unreachable")


def _put(container: Any, key: str | None, value: Any) -> None:
    if isinstance(container, list):
        container.append(value)
    else:
        container[key] = value


def _skip_rest(events: Iterator[tuple[str, Any]], depth: int) -> None:
    """Consume events until `depth` open containers have closed."""
    while depth:
        event, _ = next(events)
        depth += (event in _OPEN) - (event in _CLOSE)


def jsonl_records(stream: _Utf8Stream) -> Iterator[Record]:
    """One record per non-blank line; a line that is not JSON, or too long, is a bad record, not the file's end."""
    index = 0
    for number, line in _lines(stream):
        if not line.strip():
            continue
        index += 1
        if line is _LONG:
            yield Record(index, problem=f"longer than {MAX_RECORD_BYTES // 2**20} MB", line=number)
            continue
        try:
            yield Record(index, json.loads(line), line=number)
        except json.JSONDecodeError as exc:
            yield Record(index, problem=f"invalid JSON ({exc.msg} at column {exc.colno})", line=number)
        except RecursionError:
            yield Record(index, problem="nested too deeply", line=number)


_LONG = b" long "


def _lines(stream: _Utf8Stream) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each line; a line over MAX_RECORD_BYTES is given as `_LONG`, never held whole."""
    number, size = 1, 0
    partial: list[bytes] = []
    while chunk := stream.read():
        stream.mark()
        *complete, rest = chunk.split(b"\n")
        for piece in complete:
            long = size + len(piece) > MAX_RECORD_BYTES
            yield number, (_LONG if long else b"".join([*partial, piece]))
            number, partial, size = number + 1, [], 0
        size += len(rest)
        partial = [] if size > MAX_RECORD_BYTES else [*partial, rest]
    if size:
        yield number, (_LONG if size > MAX_RECORD_BYTES else b"".join(partial))
