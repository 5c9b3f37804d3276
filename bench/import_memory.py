"""Peak memory of `milton-lora memory import` on hostile and huge exports: the streaming reader's bound.

Builds, in a temporary folder, without holding any of it in memory:
- `big.zip`: a ChatGPT export zip of about 10 MB whose conversations.json expands to about 0.75 GB
  (10,000 conversations of 20 turns, 75 KB of JSON each, texts of repeated paragraphs with unique
  parts), the file that took the old reader (one `json.loads` of the whole text) to 6.6 GB;
- `one-string.json`: one conversation holding a single string of `--string-mb` MB (default 1536, the
  1.5 GB string that ended in a `sqlite3.DataError` traceback); refused by the record size limit;
- `bomb.zip`: a conversations.json of 2 GB of spaces (2 MB zipped); refused by the expansion limit.
Each is imported by its own `python -m milton_lora memory import` process; prints the input sizes, the
outcome, wall seconds and that process's peak RSS (`wait4`), against the 1 GB target.

    .venv/bin/python bench/import_memory.py [--conversations 10000] [--string-mb 1536]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

PARAGRAPH = (
    "The quarterly plan keeps the same three goals: ship the importer, measure memory, and write the notes "
    "down where the team can find them. Each goal has an owner and a date, and every Friday we look again. "
)


def write_big_zip(path: Path, conversations: int) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("conversations.json", "w") as out:
        out.write(b"[")
        for number in range(conversations):
            out.write((b"," if number else b"") + _conversation(number).encode())
        out.write(b"]")


def _conversation(number: int) -> str:
    nodes, parent = [], "root"
    chunks = ['"root": {"id": "root", "message": null, "parent": null, "children": ["m0"]}']
    for turn in range(20):
        role = "user" if turn % 2 == 0 else "assistant"
        text = f"{secrets.token_hex(12)} " + PARAGRAPH * 18
        node = f"m{turn}"
        child = f'["m{turn + 1}"]' if turn < 19 else "[]"
        chunks.append(
            f'"{node}": {{"id": "{node}", "parent": "{parent}", "children": {child}, "message": {{"id": "{node}", '
            f'"author": {{"role": "{role}", "name": null, "metadata": {{}}}}, "create_time": {1.73e9 + turn}, '
            f'"content": {{"content_type": "text", "parts": ["{text}"]}}, "status": "finished_successfully", '
            f'"weight": 1.0, "metadata": {{}}, "recipient": "all", "channel": null}}}}'
        )
        nodes.append(node)
        parent = node
    return (
        f'{{"title": "Plan {number}", "create_time": 1.73e9, "update_time": 1.73e9, "conversation_id": "c-{number}", '
        f'"current_node": "m19", "mapping": {{{", ".join(chunks)}}}}}'
    )


def write_one_string(path: Path, megabytes: int) -> None:
    with path.open("wb") as out:
        out.write(b'[{"title": "Huge", "conversation_id": "h", "current_node": "a", "mapping": {"a": {"id": "a", '
                  b'"parent": null, "children": [], "message": {"author": {"role": "user"}, "content": '
                  b'{"content_type": "text", "parts": ["')  # fmt: skip
        block = b"x" * 2**20
        for _ in range(megabytes):
            out.write(block)
        out.write(b'"]}}}}}]')


def write_bomb(path: Path) -> None:
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("conversations.json", "w", force_zip64=True) as out,
    ):
        out.write(b"[")
        for _ in range(2048):
            out.write(b" " * 2**20)
        out.write(b"]")


def run_import(path: Path, home: Path) -> tuple[int, float, float, str]:
    """(exit code, seconds, peak RSS in MiB, outcome) of one import process."""
    env = {**os.environ, "MILTON_HOME": str(home)}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "milton_lora", "memory", "import", str(path), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = process.stdout.read().decode(errors="replace") if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        report = json.loads(output)
        outcome = f"imported {report['imported']} conversations, {report['messages_imported']} messages"
    else:
        outcome = " ".join(output.split())[:160]
    return code, seconds, usage.ru_maxrss / 1024, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--string-mb", type=int, default=1536)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        inputs = {
            "big.zip": root / "big.zip",
            "one-string.json": root / "one-string.json",
            "bomb.zip": root / "bomb.zip",
        }
        write_big_zip(inputs["big.zip"], args.conversations)
        write_one_string(inputs["one-string.json"], args.string_mb)
        write_bomb(inputs["bomb.zip"])
        print(f"{'input':<16} {'on disk':>9} {'expanded':>9} {'exit':>4} {'seconds':>8} {'peak RSS':>9}  outcome")
        for name, path in inputs.items():
            size = path.stat().st_size
            expanded = zipfile.ZipFile(path).getinfo("conversations.json").file_size if name.endswith(".zip") else size
            code, seconds, rss, outcome = run_import(path, root / f"home-{name}")
            print(
                f"{name:<16} {size / 2**20:>7.1f}MB {expanded / 2**20:>7.0f}MB {code:>4} {seconds:>8.1f} "
                f"{rss:>7.0f}MB  {outcome}"
            )
        print("target: peak RSS under 1024 MB for any input")


if __name__ == "__main__":
    main()
