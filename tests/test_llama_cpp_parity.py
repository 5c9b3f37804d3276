"""llama.cpp itself loads the exported GGUF LoRA next to a GGUF of the same SmolLM2 weights, and the change
the adapter makes to its next-token logits is the change the peft adapter makes to transformers'
(`bench/gguf_lora_parity.py`, run small). Skipped where llama-cpp-python is not installed, which `.ci/run`
refuses: `make test` installs it first (`make setup-test`)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO

pytestmark = pytest.mark.slow


@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python is not installed (make setup-test builds llama.cpp into .venv once); "
    "the llama.cpp parity check is skipped",
)
def test_llama_cpp_applies_the_exported_adapter_like_peft(smollm2_dir: Path, tmp_path: Path) -> None:
    figures = tmp_path / "parity.json"
    command = [sys.executable, str(REPO / "bench" / "gguf_lora_parity.py"), "--adapter", "random", "--prompts", "4",
               "--outtypes", "f32,f16", "--json", str(figures)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, capture_output=True, text=True, timeout=1200, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {row["case"]: row for row in json.loads(figures.read_text())["rows"]}
    # Same weights in both runtimes: the adapter's change agrees to float precision (the README's run:
    # corr 0.99988, max error 1.6% of the largest change, the logits themselves differing by up to 0.1%).
    for case in ("f32 base, f32 adapter", "f32 base, f16 adapter"):
        assert rows[case]["corr"] > 0.999 and rows[case]["rel_max_err"] < 0.05, rows[case]
        assert rows[case]["top1"] >= 0.98, rows[case]
    # The Q4_1 base quantizes activations too: the deltas still point the same way, loosely.
    assert rows["q4_1 base, f16 adapter"]["corr"] > 0.5
