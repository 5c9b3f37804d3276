"""The embedded server under hostile or unlucky clients, for real: oversized bodies, prompts beyond the
context, long generations, a full queue, broken Unicode, unsupported options, admin endpoints without a
key or with a path outside the adapters folder. One server for the module, with small limits."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from helpers import Server, admin_headers, free_port, promoted_copy, run_subprocess

LIMITS = {"max_request_bytes": 65536, "request_timeout_s": 5, "max_queued_requests": 2}
HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def limited_home(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    home, run_id = promoted_copy(trained_home, tmp_path_factory.mktemp("limits") / "home")
    (home / "training/configs/serve.yaml").write_text(yaml.safe_dump(LIMITS))
    return home, run_id


@pytest.fixture(scope="module")
def limited(limited_home: tuple[Path, str]) -> Iterator[Server]:
    running = Server(limited_home[0], free_port(), {"MILTON_SERVE_API_KEY": ""})
    yield running
    running.stop()


def chat(server: Server, body: dict | bytes, client: httpx.Client | None = None) -> httpx.Response:
    post = (client or httpx).post
    url = f"{server.url}/v1/chat/completions"
    if isinstance(body, bytes):
        return post(url, content=body, headers={"content-type": "application/json"}, timeout=60)
    return post(url, json=body, timeout=60)


def test_oversized_bodies_are_refused_before_parsing(limited: Server) -> None:
    big = {"model": "milton", "messages": [{"role": "user", "content": "x" * 100_000}]}
    declared = chat(limited, big)
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "request_too_large"
    assert "65536" in declared.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"model": "milton", "messages": [{"role": "user", "content": "'
        for _ in range(100):
            yield b"y" * 1000
        yield b'"}]}'

    streamed = httpx.post(f"{limited.url}/v1/chat/completions", content=chunks(), timeout=60)
    assert streamed.status_code == 413
    assert chat(limited, {"model": "milton", "messages": HI, "max_tokens": 2}).status_code == 200


def test_prompt_and_max_tokens_must_fit_the_context(limited: Server) -> None:
    long_prompt = {"model": "milton", "messages": [{"role": "user", "content": "hello world " * 4000}]}
    refused = chat(limited, long_prompt)
    error = refused.json()["error"]
    assert refused.status_code == 400 and error["code"] == "context_length_exceeded"
    assert (
        "maximum context length is 4096 tokens" in error["message"] and "your messages resulted in" in error["message"]
    )
    too_many = chat(limited, {"model": "milton", "messages": HI, "max_tokens": 4090})
    message = too_many.json()["error"]["message"]
    assert too_many.status_code == 400 and "4096" in message and "4090 in the completion" in message


def test_a_long_generation_is_cut_at_the_deadline(limited: Server) -> None:
    """4,000 tokens would take the tiny model about a minute; request_timeout_s is 5."""
    reply = chat(limited, {"model": "milton", "messages": HI, "max_tokens": 4000}).json()
    assert reply["choices"][0]["finish_reason"] == "length"
    assert 0 < reply["usage"]["completion_tokens"] < 4000


def test_a_full_queue_answers_429_with_retry_after(limited: Server) -> None:
    """Five long requests at once against a queue of 2: two are held (one generating, one waiting for the model),
    the rest are refused at once. Sent together, so no timing of one generation decides the outcome. The waiting one
    is answered, or, when the 5 s deadline passes before the model is free, refused with 503 and Retry-After."""
    long = {"model": "milton", "messages": HI, "max_tokens": 4000}
    with ThreadPoolExecutor(5) as pool:
        replies = list(pool.map(lambda _: chat(limited, long), range(5)))
    refused = [reply for reply in replies if reply.status_code == 429]
    assert refused and 200 in {r.status_code for r in replies} <= {200, 429, 503}
    assert all(r.json()["error"]["code"] == "rate_limit_exceeded" for r in refused)
    assert all(int(r.headers["retry-after"]) >= 1 for r in replies if r.status_code != 200)
    assert httpx.get(f"{limited.url}/health").json()["requests"] == 0


def test_lone_surrogate_is_a_400_and_the_connection_survives(limited: Server) -> None:
    with httpx.Client(timeout=60) as client:
        broken = chat(limited, b'{"model": "milton", "messages": [{"role": "user", "content": "a\\ud800b"}]}', client)
        assert broken.status_code == 400 and "surrogate" in broken.json()["error"]["message"]
        after = chat(limited, {"model": "milton", "messages": HI, "max_tokens": 2}, client)
        assert after.status_code == 200


@pytest.mark.parametrize(
    ("extra", "param"),
    [({"n": 2}, "n"), ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
     ({"tool_choice": "required"}, "tool_choice")],
)  # fmt: skip
def test_unsupported_options_are_refused(limited: Server, extra: dict, param: str) -> None:
    refused = chat(limited, {"model": "milton", "messages": HI, "max_tokens": 2, **extra})
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == param and refused.json()["error"]["type"] == "invalid_request_error"


def test_streams_end_with_the_true_finish_reason_and_usage(limited: Server) -> None:
    client = limited.client()
    ask = {"model": "milton", "messages": HI, "max_tokens": 3}
    whole = client.chat.completions.create(**ask)
    chunks = list(client.chat.completions.create(**ask, stream=True, stream_options={"include_usage": True}))
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == [whole.choices[0].finish_reason] == ["length"]  # the tiny model never ends a turn this early
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens == 3
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens
    plain = list(client.chat.completions.create(**ask, stream=True))
    assert all(c.usage is None for c in plain) and plain[-1].choices[0].finish_reason == "length"


def test_admin_endpoints_need_a_key_and_the_adapters_folder(
    limited: Server, limited_home: tuple[Path, str], tmp_path: Path
) -> None:
    home, run_id = limited_home
    inside = str(home / "adapters" / run_id)
    load = f"{limited.url}/v1/load_lora_adapter"
    anonymous = httpx.post(load, json={"lora_name": "x", "lora_path": inside})
    assert anonymous.status_code == 401 and "admin key" in anonymous.json()["error"]["message"]
    assert httpx.post(f"{limited.url}/admin/alias", json={"lora_name": "x"}).status_code == 401
    elsewhere = shutil.copytree(home / "adapters" / run_id, tmp_path / "evil")
    outside = httpx.post(load, json={"lora_name": "x", "lora_path": str(elsewhere)}, headers=admin_headers(home))
    assert outside.status_code == 400 and "inside the adapters folder" in outside.json()["error"]["message"]
    escape = httpx.post(load, json={"lora_name": "x", "lora_path": inside + "/../../../evil"},
                        headers=admin_headers(home))  # fmt: skip
    assert escape.status_code == 400
    assert "x" not in {m.id for m in limited.client().models.list().data}


def test_a_network_host_without_an_api_key_is_refused(limited_home: tuple[Path, str]) -> None:
    home, _ = limited_home
    refused = run_subprocess(["python", "-m", "milton_lora", "serve", "--host", "0.0.0.0", "--port", "1"], home, home)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "MILTON_SERVE_API_KEY" in refused.stderr and "0.0.0.0" in refused.stderr


def test_openai_client_sees_a_context_error_as_bad_request(limited: Server) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        limited.client().chat.completions.create(model="milton", messages=HI, max_tokens=4095)
    assert refused.value.body["code"] == "context_length_exceeded"
