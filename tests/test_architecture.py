"""The README's code map, enforced: which room may import which (stages are siblings, never stacked)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "milton_lora"
# Rooms every room may use.
BASE = {"errors", "fileio", "settings", "record", "lineage", "preferences", "__init__"}
# room -> rooms it may import (the README's "Code map" table).
ALLOWED: dict[str, set[str]] = {
    "vllm_rules": set(),
    "config": {"vllm_rules"},
    "libraries": set(),
    "memory": set(),
    "redact": {"config"},
    "export": {"memory", "redact", "config"},
    "chat": set(),
    "inference": {"chat", "libraries"},
    "train": {"chat", "config", "registry", "libraries", "inference"},
    "evaluate": {"chat", "inference", "registry", "config"},
    "registry": {"vllm_rules"},
    "serve": {"chat", "inference", "config", "registry", "memory", "vllm_rules"},
    "report": {"evaluate.result"},
    "demo": {"libraries", "memory", "base"},
    "base": {"libraries"},
    "adapters": {"base", "chat", "libraries", "registry"},
    "home": {"config", "memory"},
    "restate": {"inference"},
    "cycle": {"export", "redact", "train", "evaluate", "restate"},
    "promotion": {"registry", "serve.state"},
    "forgetting": {"memory", "registry", "export"},
    "ui": {
        "registry",
        "record",
        "report",
        "evaluate.result",
        "memory",
        "serve.protocol",
        "serve.runtime",
        "promotion",
        "cycle",
        "redact.config",
        "export",
        "forgetting",
    },
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


def _strings(tree: ast.AST) -> list[ast.Constant]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def _joined_onto_home(tree: ast.AST) -> list[ast.Constant]:
    """String constants joined with `/` onto a `home` (`settings.home / "adapters"`, `home / "runs"`)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant):
            left = node.left
            while isinstance(left, ast.BinOp):
                left = left.left
            if (isinstance(left, ast.Name) and left.id == "home") or (
                isinstance(left, ast.Attribute) and left.attr == "home"
            ):
                found.append(node.right)
    return found


def test_only_settings_spells_the_homes_folders() -> None:
    """Where adapters, runs, configs, the store... live is Settings' alone: no other module joins a name onto
    the home or writes a home-relative path like `training/configs/x.yaml`."""
    settings_tree = ast.parse((SRC / "settings.py").read_text())
    top = {
        node.right.value
        for node in ast.walk(settings_tree)
        if isinstance(node, ast.BinOp)
        and isinstance(node.left, ast.Attribute)
        and node.left.attr == "home"
        and isinstance(node.right, ast.Constant)
    }
    assert {"adapters", "runs", "training", "models"} <= top
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "settings.py" and path.parent == SRC:
            continue
        tree = ast.parse(path.read_text())
        problems += [f"{path.relative_to(SRC)}:{n.lineno}: home / {n.value!r}" for n in _joined_onto_home(tree)]
        problems += [
            f"{path.relative_to(SRC)}:{n.lineno}: {n.value!r}"
            for n in _strings(tree)
            if "/" in n.value and not any(c.isspace() for c in n.value) and n.value.split("/")[0] in top
        ]
    assert not problems, "home paths spelled outside settings.py (use a Settings property):\n" + "\n".join(problems)


def test_only_settings_spells_the_exports_file_names() -> None:
    """`train.jsonl`, `test.jsonl` and `metadata.json` of an export are named once (`settings.EXPORT_*`): the
    export writes them and training, evaluation and the cycle read them through those names."""
    from milton_lora import settings

    names = {settings.EXPORT_TRAIN, settings.EXPORT_TEST, settings.EXPORT_METADATA}
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "settings.py" and path.parent == SRC:
            continue
        for node in _strings(ast.parse(path.read_text())):
            if not any(c.isspace() for c in node.value) and node.value.rsplit("/", 1)[-1] in names:
                problems.append(f"{path.relative_to(SRC)}:{node.lineno}: {node.value!r}")
    assert not problems, "export file names spelled outside settings.py:\n" + "\n".join(problems)
