"""Speed of the engine against the engine of another git revision, measured in alternating runs on the same
texts within one invocation, so that a machine shared with others slows both alike.

Each run is a fresh process that imports `milton_lora` from one source tree (this checkout's `src`, or the
revision's `src` exported with `git archive`), warms the engine up, and reports the CPU seconds of one
`Redactor().find_many` over all texts. `redact_bench.py --against REV` calls `alternate`.

    python bench/redact_against.py SRC TEXTS.json     # the worker: prints the CPU seconds
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def alternate(revision: str, texts: list[str], rounds: int) -> tuple[float, float]:
    """Median CPU seconds of (the revision's engine, this checkout's engine), `rounds` runs each, alternating."""
    with tempfile.TemporaryDirectory(prefix="redact-against-") as folder:
        workdir = Path(folder)
        archive = subprocess.run(["git", "archive", revision, "src"], cwd=ROOT, capture_output=True, check=True)
        with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
            tar.extractall(workdir / "ref", filter="data")
        corpus = workdir / "texts.json"
        corpus.write_text(json.dumps(texts))
        theirs, ours = [], []
        for _ in range(rounds):
            theirs.append(_run(workdir / "ref" / "src", corpus))
            ours.append(_run(ROOT / "src", corpus))
    return statistics.median(theirs), statistics.median(ours)


def _run(source: Path, corpus: Path) -> float:
    output = subprocess.run(
        [sys.executable, __file__, str(source), str(corpus)], capture_output=True, text=True, check=True
    ).stdout
    return float(output.split()[-1])


def _worker(source: str, corpus: str) -> None:
    sys.path.insert(0, source)
    from milton_lora.redact import Redactor  # the tree named on the command line

    texts = json.loads(Path(corpus).read_text())
    engine = Redactor()
    engine.find_many(texts[:300])  # warm-up: phone patterns are compiled per country code on first use
    started = time.process_time()
    engine.find_many(texts)
    print(time.process_time() - started)


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2])
