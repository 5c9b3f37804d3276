"""ChatGPT's citation and tool markers, taken out of answer text before it is stored (the person saw a small
source pill or nothing, never the marker; trained verbatim, they teach the adapter to emit private-use
characters and `turn0search1` tokens).

Families (each has a test):
- private-use blocks `\\ue200KIND\\ue202PAYLOAD\\ue201`: `cite`, `filecite`, `navlist`, `image_group`, ... are
  removed; `entity` blocks (`["people","Ada Lovelace",...]`) are shown as their name, which is what the
  person read, so the name is kept;
- the highlight marks `\\ue203`, `\\ue204`, `\\ue206` around quoted text: the marks go, the text stays;
- bracket citations of browsing and file search: `【5†source】`, `【11:0†notes.pdf】`;
- the same tokens with their private-use characters already lost: `citeturn0search1turn0news3`,
  `filecite turn2file0`.
"""

from __future__ import annotations

import json
import re

_BLOCK = re.compile(r"[ \t]*\ue200([a-z_]+)\ue202(.*?)\ue201", re.DOTALL)
_HIGHLIGHT = re.compile(r"[\ue203\ue204\ue206]")
_BRACKET = re.compile(r"[ \t]*【\d+(?::\d+)?†[^】\n]{0,200}】")
_BARE = re.compile(r"[ \t]*\b(?:file)?cite\s?(?:turn\d+[a-z]+\d+)+")


def strip_markers(text: str) -> tuple[str, int]:
    """The text as the person read it, and how many markers were taken out."""
    if not any(c in text for c in "\ue200\ue203\ue204\ue206【") and "turn" not in text:
        return text, 0
    found = 0

    def block(match: re.Match[str]) -> str:
        nonlocal found
        found += 1
        name = _entity_name(match.group(2)) if match.group(1) == "entity" else None
        return match.group(0)[: match.start(1) - match.start(0) - 1] + name if name else ""

    text = _BLOCK.sub(block, text)
    for pattern in (_HIGHLIGHT, _BRACKET, _BARE):
        text, count = pattern.subn("", text)
        found += count
    return text, found


def _entity_name(payload: str) -> str | None:
    try:
        value = json.loads(payload)
    except (json.JSONDecodeError, RecursionError):
        return None
    if isinstance(value, list) and len(value) > 1 and isinstance(value[1], str):
        return value[1]
    return None
