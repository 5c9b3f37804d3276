"""A scripted judge for tests and benchmarks: a real OpenAI-compatible HTTP server on loopback that
answers every judging request deterministically by a named policy, so the judge protocol (both
orders, agreement, parsing) can be checked without a model.

Policies: `longer` prefers the longer reply (consistent in both orders), `first` always prefers
reply A (position bias: every pair disagrees with itself), `mumble` never writes a verdict.

    with ScriptedJudge("longer") as judge:
        ...  # judge.url is http://127.0.0.1:PORT/v1, judge.model is "scripted-judge"
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

MODEL = "scripted-judge"
_REPLY = re.compile(r"<reply (A|B)>\n(.*?)\n</reply \1>", re.DOTALL)


def verdict_for(policy: str, question: str) -> str:
    """What the scripted judge writes for one judging question."""
    replies = dict(_REPLY.findall(question))
    if policy == "mumble" or len(replies) != 2:
        return "Both replies have their merits."
    if policy == "first":
        return "Reply A reads better. [[A]]"
    a, b = len(replies["A"]), len(replies["B"])
    letter = "A" if a > b else "B" if b > a else "C"
    return f"The {'longer' if letter != 'C' else 'equally long'} reply wins. [[{letter}]]"


class ScriptedJudge:
    """Runs the server in a background thread for the duration of a `with` block; counts the questions."""

    def __init__(self, policy: str = "longer", api_key: str | None = None):
        self.policy = policy
        self.api_key = api_key
        self.questions: list[list[dict[str, str]]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self.model = MODEL
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedJudge:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(judge: ScriptedJudge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read their own output
            pass

        def do_GET(self) -> None:
            if not self._authorized():
                return
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            if not self._authorized():
                return
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            if body.get("model") != MODEL:
                self._send(404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}})
                return
            judge.questions.append(body["messages"])
            text = verdict_for(judge.policy, body["messages"][-1]["content"])
            self._send(200, {"object": "chat.completion", "model": MODEL,
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                          "finish_reason": "stop"}]})  # fmt: skip

        def _authorized(self) -> bool:
            if judge.api_key and self.headers.get("authorization") != f"Bearer {judge.api_key}":
                self._send(401, {"error": {"message": "Incorrect API key provided."}})
                return False
            return True

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
