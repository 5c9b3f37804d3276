"""The whole story of forgetting on the tiny model: import → export → train A → promote A → train B continuing
from A → forget one conversation → A and B tainted, production flagged, a cycle trains C without it, its text
gone from every file under MILTON_HOME, a re-import does not bring it back."""

from __future__ import annotations

import json
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest

from helpers import registry_of
from milton_lora.demo.samples import write_sample_exports
from milton_lora.memory import MemoryStore
from milton_lora.settings import Settings
from test_cycle import FAST, cycle_log, prepare_week


def lineage(home: Path, run_id: str) -> dict:
    return json.loads((home / "adapters" / run_id / "metadata.json").read_text())["lineage"]


def files_with(home: Path, texts: list[bytes]) -> list[str]:
    return [
        str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and any(t in p.read_bytes() for t in texts)
    ]


@pytest.mark.slow
def test_forget_one_conversation_everywhere_it_went(home: Path, tiny_model_dir: Path, cli) -> None:
    prepare_week(home, tiny_model_dir, cli)
    first = cli("cycle", "--days", "30", "--config", "lora_light.yaml", "--promote-if-candidate", *FAST)
    assert first.exit_code == 0, first.stderr
    a = cycle_log(home, first.stdout)["run_id"]
    assert registry_of(home).load().production().run_id == a
    # B continues A on a narrower week, replaying some of what A learned.
    assert cli("export", "--days", "8").exit_code == 0
    b_run = cli("train", "--config", "lora_light.yaml", "--from-production")
    assert b_run.exit_code == 0, b_run.stderr
    b = registry_of(home).resolve("latest")
    b_lineage = lineage(home, b)
    assert b_lineage["parent"] == a and b_lineage["replayed"] > 0
    assert {s["identity"] for s in b_lineage["inherited"]} == {s["identity"] for s in lineage(home, a)["train"]}

    # The conversation to forget: one B replayed (so A trained on it, B replayed and inherited it).
    replayed = {s["identity"] for s in b_lineage["train"][-b_lineage["replayed"] :]}
    with MemoryStore(Settings.from_env(home).memory_db) as store:
        stored = store.conversations()
        target = next(c for c in stored if store.identity_hash(c.key) in replayed)
        identity = store.identity_hash(target.key)
    others = {m.content for c in stored if c.key != target.key for m in c.messages}
    texts = [m.content for m in target.messages if len(m.content) >= 24 and m.content not in others]
    needles = [t.encode() for t in texts] + [json.dumps(t, ensure_ascii=False)[1:-1].encode() for t in texts]
    assert texts and "memory/milton.db" in files_with(home, needles)  # the grep below can fail
    assert f"runs/{a}/train.jsonl" in files_with(home, needles)
    learned_by = json.loads(cli("memory", "lineage", target.key, "--json").stdout)
    assert {(r["run_id"], r["how"]) for r in learned_by["adapters"]} == {(a, "trained"), (b, "replayed")}

    forgot = cli("memory", "forget", str(target.id))
    assert forgot.exit_code == 0, forgot.stderr
    assert f"production {a} learned a forgotten conversation" in forgot.stderr
    assert "milton-lora cycle" in forgot.stdout and a in forgot.stdout and b in forgot.stdout
    registry = registry_of(home)
    assert registry.get(a).tainted and registry.get(b).tainted and registry.get(a).status == "production"
    refused = cli("promote", b, "--to-production", "--force")
    assert refused.exit_code == 1 and "tainted" in refused.stderr
    listed = json.loads(cli("promote", "--list", "--json").stdout)
    assert {row["run_id"] for row in listed if row["tainted"]} == {a, b}
    assert json.loads(cli("memory", "lineage", target.key, "--json").stdout)["forgotten"] is True
    assert cli("report", b).exit_code == 0
    assert "Tainted, cannot be promoted" in (home / "runs" / b / "report.html").read_text()

    # The weekly cycle retrains from new weights without it, although asked to continue production.
    third = cli("cycle", "--days", "30", "--config", "lora_light.yaml", "--from-production", *FAST)
    assert third.exit_code == 0, third.stderr
    c = cycle_log(home, third.stdout)["run_id"]
    c_lineage = json.loads(cli("lineage", c, "--json").stdout)
    assert c_lineage["parent"] is None and c_lineage["inherited"] == []
    assert identity not in {s["identity"] for s in c_lineage["train"] + c_lineage["test"]}
    assert len(c_lineage["train"]) > 0 and not registry_of(home).get(c).tainted

    # Re-importing the same exports does not restore it; no file under the home holds its text.
    for path in write_sample_exports(home.parent / "samples", datetime.now(timezone.utc)).values():
        assert cli("memory", "import", str(path)).exit_code == 0
    with MemoryStore(Settings.from_env(home).memory_db) as store:
        assert target.key not in {c.key for c in store.conversations()}
    assert files_with(home, needles) == []
    for sub in ("memory", "training/data", "runs", "adapters", "models"):
        for path in [home / sub, *(home / sub).rglob("*")]:
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
