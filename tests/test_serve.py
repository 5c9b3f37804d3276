"""The embedded server, for real: a subprocess on the tiny model, spoken to with the official openai client."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from helpers import (
    PYTHON,
    REPO,
    Server,
    admin_headers,
    free_port,
    promote,
    promoted_copy,
    run_subprocess,
    second_adapter,
)
from milton_lora.config import ServeConfig
from milton_lora.memory import MemoryStore
from milton_lora.serve.vllm import vllm_command
from milton_lora.vllm_rules import vllm_rank


@pytest.fixture
def served_home(trained_home: Path, tmp_path: Path) -> tuple[Path, str]:
    """A private home with its adapter in production, for tests that change the home or the server."""
    return promoted_copy(trained_home, tmp_path / "home")


@pytest.fixture
def server(served_home: tuple[Path, str]) -> Iterator[Server]:
    home, _ = served_home
    running = Server(home, free_port(), {"MILTON_SERVE_API_KEY": ""})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def shared_home(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return promoted_copy(trained_home, tmp_path_factory.mktemp("shared") / "home")


@pytest.fixture(scope="module")
def shared_server(shared_home: tuple[Path, str]) -> Iterator[Server]:
    """One server for the tests that leave it as they found it (a start costs seconds of imports)."""
    home, _ = shared_home
    running = Server(home, free_port(), {"MILTON_SERVE_API_KEY": ""})
    yield running
    running.stop()


def test_chat_streaming_models_and_adapter_selection(shared_server: Server, shared_home: tuple[Path, str]) -> None:
    _, run_id = shared_home
    client = shared_server.client()
    models = {m.id: m for m in client.models.list().data}
    assert {"milton", "tiny"} <= set(models)
    assert models["milton"].model_extra["parent"] == "tiny"

    reply = client.chat.completions.create(model="milton", messages=[{"role": "user", "content": "Hi"}], max_tokens=8)
    assert reply.choices[0].message.role == "assistant" and reply.usage.completion_tokens <= 8
    assert reply.choices[0].finish_reason in ("stop", "length")

    chunks = list(client.chat.completions.create(model="milton", messages=[{"role": "user", "content": "Hi"}],
                                                 max_tokens=8, stream=True))  # fmt: skip
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert chunks[-1].choices[0].finish_reason == reply.choices[0].finish_reason
    assert streamed.strip() == reply.choices[0].message.content  # greedy: same answer either way

    by_run_id = client.chat.completions.create(model=run_id, messages=[{"role": "user", "content": "Hi"}], max_tokens=8)
    assert by_run_id.choices[0].message.content == reply.choices[0].message.content
    base = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Hi"}], max_tokens=8)
    assert base.choices[0].message.content is not None


def test_usage_counts_what_the_model_saw_and_generated(shared_server: Server, tiny_model_dir: Path) -> None:
    from milton_lora.chat.prompts import render_prompt
    from milton_lora.chat.tokenizer import load_tokenizer

    messages = [{"role": "user", "content": "hi"}]
    reply = shared_server.client().chat.completions.create(model="milton", messages=messages, max_tokens=5)
    seen = render_prompt(load_tokenizer(tiny_model_dir), messages)
    assert reply.usage.prompt_tokens == len(seen) > 20  # the chat template's system block and headers included
    assert 1 <= reply.usage.completion_tokens <= 5
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    if reply.choices[0].finish_reason == "length":
        assert reply.usage.completion_tokens == 5


def test_bad_requests_get_openai_errors(shared_server: Server) -> None:
    client = shared_server.client()
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "Hi"}])
    assert missing.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="milton", messages=[])
    raw = httpx.post(
        f"{shared_server.url}/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert raw.status_code == 400 and set(raw.json()["error"]) == {"message", "type", "param", "code"}
    wrong_role = httpx.post(f"{shared_server.url}/v1/chat/completions",
                            json={"model": "milton", "messages": [{"role": "wizard", "content": "x"}]})  # fmt: skip
    assert wrong_role.status_code == 400 and "traceback" not in wrong_role.text.lower()


def test_vllm_compatible_admin_endpoints(shared_server: Server, shared_home: tuple[Path, str]) -> None:
    """Loads and unloads an extra adapter with the server's admin key: the shared server ends as it started."""
    home, run_id = shared_home
    path = str(home / "adapters" / run_id)
    admin = admin_headers(home)

    def post(endpoint: str, body: dict[str, str]) -> httpx.Response:
        return httpx.post(f"{shared_server.url}/v1/{endpoint}", json=body, headers=admin)

    loaded = post("load_lora_adapter", {"lora_name": "extra", "lora_path": path})
    assert loaded.status_code == 200 and loaded.text == "Success: LoRA adapter 'extra' added successfully."
    assert post("load_lora_adapter", {"lora_name": "extra", "lora_path": path}).status_code == 400
    assert post("unload_lora_adapter", {"lora_name": "extra"}).status_code == 200
    assert post("unload_lora_adapter", {"lora_name": "extra"}).status_code == 404


def test_binds_to_loopback_only(shared_server: Server) -> None:
    listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
    local = {line.split()[1] for line in listening if line.split()[3] == "0A"}  # LISTEN
    port_hex = f"{shared_server.port:04X}"
    assert f"0100007F:{port_hex}" in local and f"00000000:{port_hex}" not in local


def test_the_dashboard_is_served_only_when_switched_on(shared_server: Server) -> None:
    assert httpx.get(f"{shared_server.url}/ui/").status_code == 404  # serve.yaml without `ui: true`


def test_promotion_hot_swaps_without_restart(server: Server, served_home: tuple[Path, str]) -> None:
    home, run_id = served_home
    client = server.client()
    ask = {"model": "milton", "messages": [{"role": "user", "content": "Plan my day"}], "max_tokens": 12}
    before = client.chat.completions.create(**ask).choices[0].message.content
    base_answer = client.chat.completions.create(**{**ask, "model": "tiny"}).choices[0].message.content
    assert before != base_answer
    old_target = {m.id: m for m in client.models.list().data}["milton"].model_extra["root"]

    new = second_adapter(home, run_id, "lora_20991231_235959")
    result = promote(home, new)
    assert "now answers `milton` with lora_20991231_235959" in result.stdout
    models = {m.id: m for m in client.models.list().data}
    assert models["milton"].model_extra["root"].startswith(new + "@")
    assert old_target not in models  # the old version was unloaded
    after = client.chat.completions.create(**ask).choices[0].message.content
    assert after == base_answer
    assert server.process.poll() is None

    rolled = run_subprocess(["python", "-m", "milton_lora", "promote", "--rollback", "--force"], home, home)
    assert rolled.returncode == 0 and f"answers `milton` with {run_id}" in rolled.stdout
    assert client.chat.completions.create(**ask).choices[0].message.content == before


def test_promote_repairs_a_hot_swap_killed_halfway(server: Server, served_home: tuple[Path, str]) -> None:
    """What kill -9 of `promote` during its hot swap leaves: the registry already moved to the new adapter,
    the server with the new version loaded but `milton` still on the old one. Promoting again repairs it."""
    from helpers import registry_of

    home, run_id = served_home
    new = second_adapter(home, run_id, "lora_20991231_235959")
    registry_of(home).promote_to_production(new, True, 64, "promote (killed)")
    half = httpx.post(f"{server.url}/v1/load_lora_adapter", headers=admin_headers(home),
                      json={"lora_name": f"{new}@1", "lora_path": str(home / "adapters" / new)})  # fmt: skip
    assert half.status_code == 200
    models = {m.id: m for m in server.client().models.list().data}
    assert models["milton"].model_extra["root"].startswith(run_id + "@")  # the server disagrees with the registry

    repaired = promote(home, new)
    assert f"now answers `milton` with {new}" in repaired.stdout
    models = {m.id: m for m in server.client().models.list().data}
    assert models["milton"].model_extra["root"].startswith(new + "@")
    assert [name for name in models if "@" in name] == [models["milton"].model_extra["root"]]  # nothing stale


def test_api_key_is_enforced(served_home: tuple[Path, str]) -> None:
    """With admin_endpoints on, the API key (and only it) also opens vLLM's load/unload endpoints."""
    home, run_id = served_home
    (home / "training/configs/serve.yaml").write_text(yaml.safe_dump({"admin_endpoints": True}))
    running = Server(home, free_port(), {"MILTON_SERVE_API_KEY": "s3cret-key"})
    try:
        with pytest.raises(openai.AuthenticationError):
            running.client("wrong").models.list()
        assert running.client("s3cret-key").models.list().data
        assert httpx.get(f"{running.url}/health").status_code == 200  # health stays open for probes
        body = {"lora_name": "extra", "lora_path": str(home / "adapters" / run_id)}
        load = f"{running.url}/v1/load_lora_adapter"
        assert httpx.post(load, json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.post(load, json=body, headers={"Authorization": "Bearer s3cret-key"}).status_code == 200
    finally:
        running.stop()


def test_abandoned_streams_free_the_model_at_once(shared_server: Server) -> None:
    """Three clients start minute-long streams and hang up; a short request is answered at once, not after
    their generations (request_timeout_s is the default 120 s here)."""
    long = {"model": "milton", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4000, "stream": True}
    for _ in range(3):
        with httpx.Client(timeout=60) as client, client.stream("POST", f"{shared_server.url}/v1/chat/completions",
                                                               json=long) as abandoned:  # fmt: skip
            next(abandoned.iter_lines())
    ask = {"model": "milton", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    short = httpx.post(f"{shared_server.url}/v1/chat/completions", json=ask, timeout=30)
    assert short.status_code == 200 and short.json()["usage"]["completion_tokens"] == 4
    assert httpx.get(f"{shared_server.url}/health").json()["requests"] == 0


def test_capture_appends_served_conversations(served_home: tuple[Path, str]) -> None:
    home, _ = served_home
    (home / "training/configs/serve.yaml").write_text(yaml.safe_dump({"capture": True}))
    running = Server(home, free_port(), {})
    try:
        first = [{"role": "user", "content": "Remember the boiler code 4411"}]
        reply = running.client().chat.completions.create(model="milton", messages=first, max_tokens=6)
        follow = [*first, {"role": "assistant", "content": reply.choices[0].message.content},
                  {"role": "user", "content": "Thanks"}]  # fmt: skip
        running.client().chat.completions.create(model="milton", messages=follow, max_tokens=6)
        private = [{"role": "user", "content": "Do not keep this one"}]
        running.client().chat.completions.create(model="milton", messages=private, max_tokens=6, store=False)
    finally:
        running.stop()
    with MemoryStore(home / "memory" / "milton.db") as store:
        captured = [c for c in store.conversations() if c.source == "milton-serve"]
    assert len(captured) == 1 and len(captured[0].messages) == 4  # the grown conversation replaced the first
    assert captured[0].messages[0].content == "Remember the boiler code 4411"


def test_start_and_stop_scripts_are_idempotent(served_home: tuple[Path, str]) -> None:
    home, _ = served_home
    port = free_port()
    (home / "training/configs/serve.yaml").write_text(yaml.safe_dump({"port": port}))
    env = {**os.environ, "MILTON_HOME": str(home), "MILTON_PYTHON": PYTHON, "PYTHONPATH": str(REPO / "src")}

    def script(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(REPO / "scripts" / name)], cwd=home, env=env, capture_output=True, text=True,
                              timeout=200)  # fmt: skip

    try:
        started = script("start_all.sh")
        assert started.returncode == 0 and "started at" in started.stdout, started.stderr
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
        assert "already running" in script("start_all.sh").stdout
    finally:
        stopped = script("stop_all.sh")
    assert "stopped" in stopped.stdout
    assert "not running" in script("stop_all.sh").stdout
    assert (home / "logs" / "server.log").exists() and not (home / "runs/server/state.json").exists()


def test_no_server_means_promotion_just_says_so(served_home: tuple[Path, str]) -> None:
    home, run_id = served_home
    new = second_adapter(home, run_id, "lora_20991231_000000")
    assert "no server running" in promote(home, new).stdout


def test_vllm_command_and_rank_rounding(tmp_path: Path) -> None:
    assert [vllm_rank(r) for r in (1, 4, 8, 12, 16, 33, 64, 300)] == [1, 8, 8, 16, 16, 64, 64, 320]
    adapter = tmp_path / "a"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 12}))
    config = ServeConfig(backend="vllm", port=8000, vllm_extra_args=["--max-loras", "4"])
    command = vllm_command(config, Path("/models/Llama-3.1-8B-Instruct"), "lora_x@1", adapter, 8001)
    assert command[:3] == ["vllm", "serve", "/models/Llama-3.1-8B-Instruct"]
    assert command[command.index("--max-lora-rank") + 1] == "16" and "--enable-lora" in command
    module = json.loads(command[command.index("--lora-modules") + 1])
    assert module == {"name": "lora_x@1", "path": str(adapter), "base_model_name": "Llama-3.1-8B-Instruct"}
    assert command[-2:] == ["--max-loras", "4"] and command[command.index("--port") + 1] == "8001"


def test_vllm_proxy_adds_the_alias(shared_server: Server, shared_home: tuple[Path, str]) -> None:
    """The proxy in front of vLLM, exercised against a real OpenAI/vLLM-compatible upstream."""
    from fastapi.testclient import TestClient

    from milton_lora.serve.vllm import create_proxy_app

    models = {m["id"]: m for m in httpx.get(f"{shared_server.url}/v1/models").json()["data"]}
    versioned = models["milton"]["root"]
    assert versioned in models and versioned.startswith(shared_home[1] + "@")
    with TestClient(create_proxy_app(shared_server.url, None, admin_key="k")) as proxy:
        body = {"model": "milton", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
        assert proxy.post("/v1/chat/completions", json=body).status_code == 404
        assert proxy.post("/admin/alias", json={"lora_name": versioned}).status_code == 401  # no key, no admin
        moved = proxy.post("/admin/alias", json={"lora_name": versioned}, headers={"Authorization": "Bearer k"})
        assert moved.status_code == 200
        answered = proxy.post("/v1/chat/completions", json=body)
        assert answered.status_code == 200 and answered.json()["model"] == versioned
        assert proxy.get("/v1/models").json()["data"]


@pytest.mark.parametrize("system", [None, "You are Milton."], ids=["no system prompt", "one system prompt for all"])
def test_capture_keeps_apart_what_shares_an_opening_and_never_brings_back_a_forgotten_one(
    tmp_path: Path, system: str | None
) -> None:
    from datetime import datetime, timezone

    from milton_lora.serve.runtime import capture_to_memory

    db = tmp_path / "milton.db"
    capture = capture_to_memory(db)
    head = [{"role": "system", "content": system}] if system else []
    opening = [*head, {"role": "user", "content": "Plan my week"}]
    capture(opening, "Sure: Monday gym.")
    first = [
        *opening,
        {"role": "assistant", "content": "Sure: Monday gym."},
        {"role": "user", "content": "And Tuesday?"},
    ]
    capture(first, "Tuesday: dentist.")
    capture(opening, "Happy to: start with sleep.")  # another chat that opens the same way
    other = [*opening, {"role": "assistant", "content": "Sure: Monday gym."}, {"role": "user", "content": "Cancel it"}]
    capture(other, "Cancelled.")  # branches off the first after its first reply
    capture(first, "Tuesday: dentist.")  # the same request again (a retry) changes nothing
    capture([*head, {"role": "user", "content": "Plan my day"}], "Up at seven.")  # shares the system prompt only
    with MemoryStore(db) as store:
        stored = {tuple(m.content for m in c.messages if m.role != "system") for c in store.conversations()}
        assert stored == {
            ("Plan my week", "Sure: Monday gym.", "And Tuesday?", "Tuesday: dentist."),
            ("Plan my week", "Happy to: start with sleep."),
            ("Plan my week", "Sure: Monday gym.", "Cancel it", "Cancelled."),
            ("Plan my day", "Up at seven."),
        }
        grown = next(
            c for c in store.conversations() if len(c.messages) == 4 + len(head) and "And Tuesday?" in
            [m.content for m in c.messages]
        )  # fmt: skip
        store.delete_forever([grown], "test", datetime.now(timezone.utc))
    capture(
        [*first, {"role": "assistant", "content": "Tuesday: dentist."}, {"role": "user", "content": "Wed?"}], "Rest."
    )
    with MemoryStore(db) as store:
        assert not any(m.content == "And Tuesday?" for c in store.conversations() for m in c.messages)


@pytest.mark.parametrize("system", [None, "You are Milton."], ids=["no system prompt", "one system prompt for all"])
def test_the_same_request_sent_again_keeps_the_replaced_reply_as_its_alternative(
    tmp_path: Path, system: str | None
) -> None:
    """A regeneration (the same messages again, answered differently): one conversation whose reply is the
    newest, the older replies its abandoned alternatives; a later turn grows it; the same question after the
    window is a new conversation."""
    from datetime import datetime, timedelta, timezone

    from milton_lora.serve.runtime import capture_to_memory

    db = tmp_path / "milton.db"
    capture = capture_to_memory(db)
    head = [{"role": "system", "content": system}] if system else []
    ask = [*head, {"role": "user", "content": "Name my boat"}]
    for reply in ("Call it Wave.", "Call it Drift.", "Call it Saltmarsh."):
        capture(ask, reply)
    capture(ask, "Call it Saltmarsh.")  # a plain retry that got the same reply changes nothing
    capture([*ask, {"role": "assistant", "content": "Call it Saltmarsh."}, {"role": "user", "content": "Why?"}],
            "It sounds like home.")  # fmt: skip
    with MemoryStore(db) as store:
        (conversation,) = store.conversations(with_alternatives=True)
        assert [m.content for m in conversation.messages[len(head) :]] == [
            "Name my boat", "Call it Saltmarsh.", "Why?", "It sounds like home."
        ]  # fmt: skip
        reply = conversation.messages[len(head) + 1]
        assert [a.content for a in reply.alternatives] == ["Call it Wave.", "Call it Drift."]
    cat = [*head, {"role": "user", "content": "Name my cat"}]
    capture(cat, "Call her Tom.")
    with sqlite3.connect(db) as raw:  # every reply so far was given an hour ago
        an_hour_ago = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
        raw.execute("UPDATE messages SET created_at = ?", (an_hour_ago,))
    capture(cat, "Call her Felix.")  # the same question after the window: a new conversation
    with MemoryStore(db) as store:
        assert len(store.conversations()) == 3 and store.stats()["abandoned_replies"] == 2


def test_feedback_on_served_replies_becomes_preferences(served_home: tuple[Path, str]) -> None:
    """Thumbs and an edit posted as raw HTTP on replies the server produced (one streamed) land on the captured
    replies and come out of `export` as labels and an edited pair; what was not captured is a 404. The base model
    answers (the tiny adapter's greedy replies decode to blanks, which give no preference)."""
    home, _ = served_home
    (home / "training/configs/serve.yaml").write_text(yaml.safe_dump({"capture": True}))
    running = Server(home, free_port(), {"MILTON_SERVE_API_KEY": "k3y"})
    key = {"Authorization": "Bearer k3y"}

    def feedback(body: dict[str, str], headers: dict[str, str] = key) -> httpx.Response:
        return httpx.post(f"{running.url}/v1/feedback", json=body, headers=headers, timeout=30)

    try:
        client = running.client("k3y")
        cat = [{"role": "user", "content": "Suggest a name for my cat"}]
        disliked = client.chat.completions.create(model="tiny", messages=cat, max_tokens=6)
        dog = [{"role": "user", "content": "Suggest a name for my dog"}]
        stream = list(client.chat.completions.create(model="tiny", messages=dog, max_tokens=6, stream=True))
        liked = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        private = client.chat.completions.create(model="tiny", messages=cat, max_tokens=6, store=False)

        edit = {"response_id": disliked.id, "rating": "down", "edited_content": "Call her Pixel, after the cursor."}
        assert feedback(edit).json()["edited"] is True
        assert feedback({"response_id": stream[0].id, "rating": "up"}).status_code == 200
        unknown = feedback({"response_id": private.id, "rating": "up"})  # store: false was not captured
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "response_not_found"
        bad = feedback({"response_id": disliked.id, "rating": "meh"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "rating"
        assert feedback({"response_id": disliked.id, "rating": "up"}, {}).status_code == 401
    finally:
        running.stop()
    assert run_subprocess(["python", "-m", "milton_lora", "export"], REPO, home).returncode == 0
    found = [json.loads(line) for line in (home / "training/data/exported/preferences.jsonl").read_text().splitlines()]
    served = [p for p in found if p["prompt"][0]["content"] in (cat[0]["content"], dog[0]["content"])]
    reply = disliked.choices[0].message.content
    assert {(p["kind"], p.get("source"), p.get("chosen") or p["completion"], p.get("desirable")) for p in served} == {
        ("pair", "edited", "Call her Pixel, after the cursor.", None),
        ("label", "feedback", reply, False),
        ("label", "feedback", liked.strip(), True),  # the stream's pieces, as the reply was captured
    }
    assert next(p for p in served if p["kind"] == "pair")["rejected"] == reply


def test_feedback_needs_capture(shared_server: Server) -> None:
    refused = httpx.post(f"{shared_server.url}/v1/feedback", json={"response_id": "chatcmpl-x", "rating": "up"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "capture_disabled"
