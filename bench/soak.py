"""Soak: N concurrent clients for a bounded time against the embedded server on loopback, mixing valid,
oversized, abandoned and malformed requests; the server must keep answering and its memory stay flat.

The server is `milton-lora serve` as its own process on a throwaway home that serves the tiny model
(`base_model_path` in serve.yaml, no adapter), bound to 127.0.0.1 with the default limits except
`request_timeout_s`. Each client loops until the time is up, taking the next kind in turn:
- valid: a chat completion (stream or not, alternately) of up to `--max-tokens` tokens; its latency counts;
- oversized: a 2 MB body (413 expected);
- abandoned: a stream of 4,000 tokens dropped after its first chunk (the server must cancel it);
- malformed: broken JSON, a lone surrogate, n=2, or a prompt beyond the context (400 expected).
A 429 (queue full) is counted, not retried. RSS is the server's, after a warm-up request and at the end.

    .venv/bin/python bench/soak.py [--clients 8] [--seconds 60] [--max-tokens 16]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import yaml

from milton_lora.demo.tiny_model import build_tiny_model

KINDS = ("valid", "oversized", "abandoned", "malformed")
HI = [{"role": "user", "content": "Plan my Tuesday"}]
MALFORMED = [
    b"{not json",
    b'{"model": "tiny", "messages": [{"role": "user", "content": "\\ud800"}]}',
    b'{"model": "tiny", "n": 2, "messages": [{"role": "user", "content": "hi"}]}',
    ('{"model": "tiny", "messages": [{"role": "user", "content": "' + "hello world " * 4000 + '"}]}').encode(),
]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def start_server(home: Path, port: int, timeout_s: float) -> subprocess.Popen:
    model = build_tiny_model(home / "models" / "tiny")
    config = {"base_model_path": str(model), "port": port, "request_timeout_s": timeout_s}
    (home / "training" / "configs").mkdir(parents=True)
    (home / "training" / "configs" / "serve.yaml").write_text(yaml.safe_dump(config))
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "MILTON_HOME": str(home), "PYTHONPATH": str(src), "MILTON_SERVE_API_KEY": ""}
    server = subprocess.Popen([sys.executable, "-m", "milton_lora", "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline:
        if server.poll() is not None:
            raise SystemExit("the server exited during start")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start within 120 s")


class Tally:
    """What the clients saw: (kind, outcome) counts and the latencies of valid requests."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.latencies: list[float] = []

    def add(self, kind: str, outcome: str, latency: float | None = None) -> None:
        with self.lock:
            self.outcomes[(kind, outcome)] += 1
            if latency is not None:
                self.latencies.append(latency)


def one_request(client: httpx.Client, url: str, kind: str, turn: int, max_tokens: int, tally: Tally) -> None:
    chat = f"{url}/v1/chat/completions"
    started = time.perf_counter()
    try:
        if kind == "valid":
            body = {"model": "tiny", "messages": HI, "max_tokens": max_tokens, "stream": turn % 2 == 1}
            with client.stream("POST", chat, json=body) as response:
                response.read()
            ok = response.status_code == 200
            tally.add(kind, str(response.status_code), time.perf_counter() - started if ok else None)
        elif kind == "oversized":
            body = {"model": "tiny", "messages": [{"role": "user", "content": "x" * 2_000_000}]}
            tally.add(kind, str(client.post(chat, json=body).status_code))
        elif kind == "abandoned":
            body = {"model": "tiny", "messages": HI, "max_tokens": 4000, "stream": True}
            with client.stream("POST", chat, json=body) as response:
                if response.status_code == 200:
                    next(response.iter_lines())
            tally.add(kind, str(response.status_code))
        else:
            content = MALFORMED[turn % len(MALFORMED)]
            response = client.post(chat, content=content, headers={"content-type": "application/json"})
            tally.add(kind, str(response.status_code))
    except httpx.HTTPError as exc:
        tally.add(kind, type(exc).__name__)


def client_loop(url: str, offset: int, until: float, max_tokens: int, tally: Tally) -> None:
    turns = itertools.count()
    with httpx.Client(timeout=120) as client:
        while time.time() < until:
            turn = next(turns)
            kind = KINDS[(turn + offset) % len(KINDS)]
            if kind == "abandoned":
                with httpx.Client(timeout=120) as own:  # its own connection, closed mid-stream
                    one_request(own, url, kind, turn, max_tokens, tally)
            else:
                one_request(client, url, kind, turn, max_tokens, tally)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--request-timeout", type=float, default=30, help="the server's request_timeout_s")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = start_server(Path(tmp) / "home", port, options.request_timeout)
        url = f"http://127.0.0.1:{port}"
        try:
            warm = Tally()
            with httpx.Client(timeout=120) as client:
                one_request(client, url, "valid", 0, options.max_tokens, warm)
            rss_start = rss_mb(server.pid)
            tally = Tally()
            until = time.time() + options.seconds
            threads = [threading.Thread(target=client_loop, args=(url, i, until, options.max_tokens, tally))
                       for i in range(options.clients)]  # fmt: skip
            began = time.time()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.time() - began
            drained = drain(url)
            rss_end = rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    report(options, tally, elapsed, drained, rss_start, rss_end)


def drain(url: str, limit_s: float = 30) -> float | None:
    """Seconds until the server holds no request (abandoned streams included) after the clients stop."""
    started = time.time()
    while time.time() - started < limit_s:
        if httpx.get(f"{url}/health", timeout=10).json()["requests"] == 0:
            return time.time() - started
        time.sleep(0.05)
    return None


def report(options: argparse.Namespace, tally: Tally, elapsed: float, drained: float | None, rss_start: float,
           rss_end: float) -> None:  # fmt: skip
    total = sum(tally.outcomes.values())
    print(f"{options.clients} clients for {elapsed:.1f} s on loopback (tiny model, max_tokens {options.max_tokens}, "
          f"request_timeout_s {options.request_timeout:g})")  # fmt: skip
    print(f"requests answered: {total}")
    for kind in KINDS:
        seen = {outcome: n for (k, outcome), n in sorted(tally.outcomes.items()) if k == kind}
        print(f"  {kind:<10} " + ", ".join(f"{outcome}: {n}" for outcome, n in seen.items()))
    if tally.latencies:
        p50, p95 = percentile(tally.latencies, 50), percentile(tally.latencies, 95)
        print(f"valid latency: p50 {p50:.2f} s, p95 {p95:.2f} s ({len(tally.latencies)} valid answered)")
    print("requests held after the clients stopped: " + (f"none after {drained:.2f} s" if drained is not None
                                                          else "some still after 30 s"))  # fmt: skip
    change = (rss_end - rss_start) / rss_start
    print(f"server RSS: {rss_start:.0f} MB after warm-up, {rss_end:.0f} MB at the end ({change:+.1%}; "
          f"{'flat' if abs(change) <= 0.10 else 'NOT flat'} within 10%)")  # fmt: skip


if __name__ == "__main__":
    main()
