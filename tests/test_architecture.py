"""The README's code map, enforced: which room may import which (stages are siblings, never stacked)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "milton_lora"
# Rooms every room may use.
BASE = {"errors", "fileio", "settings", "__init__"}
# room -> rooms it may import (the README's "Code map" table).
ALLOWED: dict[str, set[str]] = {
    "vllm_rules": set(),
    "config": {"vllm_rules"},
    "libraries": set(),
    "memory": set(),
    "redact": {"config"},
    "export": {"memory", "redact"},
    "chat": set(),
    "inference": {"chat", "libraries"},
    "train": {"chat", "config", "registry", "libraries"},
    "evaluate": {"chat", "inference", "registry", "config"},
    "registry": {"vllm_rules"},
    "serve": {"chat", "inference", "config", "registry", "memory", "vllm_rules"},
    "report": {"evaluate.result"},
    "demo": {"libraries", "memory", "base"},
    "base": {"libraries"},
    "adapters": {"base", "chat", "libraries", "registry"},
    "home": {"config", "memory"},
    "cycle": {"export", "redact", "train", "evaluate"},
    "promotion": {"registry", "serve.state"},
}
MAX_LINES = 600


def room_of(module: str) -> str:
    """`milton_lora.serve.vllm` -> `serve`, `milton_lora.config` -> `config`."""
    return module.split(".")[1] if module.count(".") >= 1 else module


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("milton_lora"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("milton_lora"))
    return found


def test_rooms_import_only_what_the_code_map_allows() -> None:
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        module = "milton_lora." + ".".join(path.relative_to(SRC).with_suffix("").parts)
        room = room_of(module)
        if room in ("cli", "__main__", "__init__") or room in BASE:
            continue
        assert room in ALLOWED, f"{path}: room '{room}' is not in the code map; add it to README and this test"
        for imported in imports_of(path):
            target = room_of(imported) if imported != "milton_lora" else "__init__"
            if target == room or target in BASE:
                continue
            dotted = ".".join(imported.split(".")[1:3])
            if target not in ALLOWED[room] and dotted not in ALLOWED[room]:
                problems.append(f"{module} imports {imported}")
    assert not problems, "imports the code map does not allow:\n" + "\n".join(problems)


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {p.relative_to(SRC): len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    long = [f"{path}: {lines}" for path, lines in sizes.items() if lines > MAX_LINES]
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_code_map_has_no_circle() -> None:
    """Rooms stack in floors: no room may reach itself through the rooms it may import."""

    def reachable(room: str) -> set[str]:
        seen: set[str] = set()
        todo = [room]
        while todo:
            for target in ALLOWED.get(todo.pop().split(".")[0], set()):
                if target.split(".")[0] not in seen:
                    seen.add(target.split(".")[0])
                    todo.append(target)
        return seen

    circles = [room for room in ALLOWED if room in reachable(room)]
    assert not circles, f"rooms that import themselves through others: {circles}"
