"""The head-to-head judge: any OpenAI-compatible endpoint compares the adapter's answer with the opponent's.

Protocol (as in FastChat's llm_judge and AlpacaEval): the same prompts and decoding for both sides;
each pair is judged twice with the positions swapped; a win or loss counts only when both orders
agree, anything else is a tie (`inconsistent` counts the disagreements, `unparsed` the pairs where a
verdict could not be read). With the person's own replies as examples, the same protocol asks which reply
sounds more like the person's assistant (`style_judge_messages`; the style prompts' pairs). The win rate
counts a tie as half a win; its 95% interval is a
percentile bootstrap over the pairs. Mean answer lengths are reported because judges favour longer
answers.

Owns the judge prompt, verdict parsing, the HTTP client (`/models` to check, `/chat/completions` to
ask) and the loopback rule: held-out conversations are the person's own, so a judge that is not on
this machine is refused unless `--allow-remote-judge` is given.
"""

from __future__ import annotations

import ipaddress
import random
import re
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from milton_lora.errors import MiltonError
from milton_lora.evaluate.result import HeadToHead, Judgement, Outcome, Source, Verdict

_SYSTEM = (
    "You compare two replies an assistant could give at the end of a conversation. Decide which reply serves "
    "the user better: correct, helpful, following the user's instructions, safe, and no longer than needed. "
    "The order of the replies and their length say nothing about their quality. Write one short sentence "
    "of reasoning, then end with exactly one verdict: [[A]] if reply A is better, [[B]] if reply B is better, "
    "[[C]] if they are equally good."
)
_STYLE_SYSTEM = (
    "You compare two replies an assistant could give at the end of a conversation. You are shown real replies "
    "of one particular assistant first. Decide which of the two replies sounds more like that assistant: its "
    "length, structure, tone, recurring phrases, openers and sign-offs, and the formats it uses for times, "
    "units and dates. Ignore which reply is more helpful or correct. The order of the replies says nothing. "
    "Write one short sentence of reasoning, then end with exactly one verdict: [[A]] if reply A sounds more "
    "like that assistant, [[B]] if reply B does, [[C]] if they are equally close."
)
STYLE_EXAMPLES = 4  # the person's real replies shown to the style judge
_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")
_ROLE_NAMES = {"system": "SYSTEM", "user": "USER", "assistant": "ASSISTANT"}
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class JudgeSpec:
    """Where the judge is and how to ask it (the API key stays out of every file written)."""

    url: str
    model: str
    api_key: str | None = None
    max_tokens: int = 256
    concurrency: int = 4
    timeout_s: float = 900.0  # a CPU judge answers one request at a time; the others wait their turn


@dataclass(frozen=True)
class PairToJudge:
    id: str
    source: Source
    messages: list[dict[str, str]]
    adapter: str
    opponent: str


def judge_messages(conversation: list[dict[str, str]], first: str, second: str) -> list[dict[str, str]]:
    """The judge's request: the conversation so far, then reply A and reply B."""
    transcript = "\n\n".join(f"{_ROLE_NAMES.get(m['role'], m['role'])}: {m['content']}" for m in conversation)
    question = (
        f"<conversation>\n{transcript}\n</conversation>\n\n<reply A>\n{first}\n</reply A>\n\n"
        f"<reply B>\n{second}\n</reply B>\n\nWhich reply is better? End with [[A]], [[B]] or [[C]]."
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": question}]


def style_judge_messages(
    examples: Sequence[str], conversation: list[dict[str, str]], first: str, second: str
) -> list[dict[str, str]]:
    """The style judge's request: the person's real replies as examples, then the conversation and both replies."""
    shown = "\n\n".join(f"<example>\n{text}\n</example>" for text in examples)
    question = judge_messages(conversation, first, second)[1]["content"].replace(
        "Which reply is better?", "Which reply sounds more like the assistant of the examples?"
    )
    return [{"role": "system", "content": _STYLE_SYSTEM},
            {"role": "user", "content": f"<examples>\n{shown}\n</examples>\n\n{question}"}]  # fmt: skip


def parse_verdict(text: str) -> str | None:
    """'A', 'B' or 'C' (tie) from the judge's last [[X]]; None when it wrote none."""
    found = _VERDICT.findall(text)
    return found[-1] if found else None


def favoured(letter: str | None, adapter_first: bool) -> Verdict:
    """Map a verdict letter back to a side, given which side was shown as reply A."""
    if letter is None:
        return "unparsed"
    if letter == "C":
        return "tie"
    return "adapter" if (letter == "A") == adapter_first else "opponent"


def outcome(verdicts: list[Verdict]) -> Outcome:
    """A win or loss only when both orders agree; anything else is a tie."""
    if verdicts == ["adapter", "adapter"]:
        return "win"
    if verdicts == ["opponent", "opponent"]:
        return "loss"
    return "tie"


def judge_all(
    client: JudgeClient, pairs: list[PairToJudge], advance: Callable[[int], None], style_examples: Sequence[str] = ()
) -> list[Judgement]:
    """Every pair judged in both orders (requests run concurrently); judgements in the order of `pairs`. Pairs
    from the style prompts are asked which reply sounds more like `style_examples`, the others which is better."""
    requests = [(pair, adapter_first) for pair in pairs for adapter_first in (True, False)]

    def ask(request: tuple[PairToJudge, bool]) -> str:
        pair, adapter_first = request
        first, second = (pair.adapter, pair.opponent) if adapter_first else (pair.opponent, pair.adapter)
        if pair.source == "style":
            reply = client.ask(style_judge_messages(style_examples, pair.messages, first, second))
        else:
            reply = client.ask(judge_messages(pair.messages, first, second))
        advance(1)
        return reply

    with ThreadPoolExecutor(max_workers=client.spec.concurrency) as pool:
        raw = list(pool.map(ask, requests))
    judgements = []
    for index, pair in enumerate(pairs):
        texts = raw[2 * index : 2 * index + 2]
        verdicts = [
            favoured(parse_verdict(text), adapter_first)
            for text, adapter_first in zip(texts, (True, False), strict=True)
        ]
        judgements.append(
            Judgement(
                id=pair.id,
                source=pair.source,
                messages=pair.messages,
                adapter=pair.adapter,
                opponent=pair.opponent,
                verdicts=verdicts,
                raw=texts,
                outcome=outcome(verdicts),
            )
        )
    return judgements


def head_to_head(judgements: list[Judgement], opponent: str, judge_model: str, seed: int = 0) -> HeadToHead:
    """Wins, ties, losses, the win rate (a tie is half) with its bootstrap 95% interval, and mean lengths."""
    counts = {key: sum(j.outcome == key for j in judgements) for key in ("win", "tie", "loss")}
    scores = [{"win": 1.0, "tie": 0.5, "loss": 0.0}[j.outcome] for j in judgements]
    low, high = bootstrap_interval(scores, seed)
    return HeadToHead(
        opponent=opponent,
        judge_model=judge_model,
        prompts=len(judgements),
        wins=counts["win"],
        ties=counts["tie"],
        losses=counts["loss"],
        win_rate=sum(scores) / len(scores),
        ci_low=low,
        ci_high=high,
        inconsistent=sum(_disagree(j.verdicts) for j in judgements),
        unparsed=sum("unparsed" in j.verdicts for j in judgements),
        mean_chars_adapter=_mean(len(j.adapter) for j in judgements),
        mean_chars_opponent=_mean(len(j.opponent) for j in judgements),
    )


def bootstrap_interval(scores: list[float], seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
    """The 2.5th and 97.5th percentiles of the mean over resamples of `scores` with replacement."""
    rng = random.Random(seed)
    n = len(scores)
    means = sorted(sum(rng.choices(scores, k=n)) / n for _ in range(resamples))
    return means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]


def _disagree(verdicts: list[Verdict]) -> bool:
    return "unparsed" not in verdicts and verdicts[0] != verdicts[1]


def _mean(values: Any) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0


# --- where the judge is -----------------------------------------------------------------------


def normalize_url(url: str) -> str:
    """The OpenAI base URL: http(s)://host:port/v1 (a bare host:port gets /v1)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MiltonError(f"--judge-url {url}: give an http(s) URL, e.g. http://127.0.0.1:8000/v1")
    path = parts.path.rstrip("/") or "/v1"
    return f"{parts.scheme}://{parts.netloc}{path}"


def is_loopback(url: str) -> bool:
    """True when every address the URL's host names is on this machine."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def remote_judge_refusal(url: str, held_out: int, sanity: int, test_file: str) -> str:
    """Why a judge elsewhere is refused, saying exactly what it would receive."""
    host = urlsplit(url).hostname
    return (
        f"--judge-url {url}: {host} is not on this machine. It would receive {held_out} of your held-out "
        f"conversations (from {test_file}, up to each one's last user turn), the {sanity} sanity prompts, and "
        "both models' answers to each. Pass --allow-remote-judge to send them, or run the judge locally "
        "(e.g. milton-lora serve, or vLLM on 127.0.0.1)"
    )


class JudgeClient:
    """Talks to the judge's OpenAI-compatible API; every failure is one line naming the URL."""

    def __init__(self, spec: JudgeSpec):
        self.spec = spec
        headers = {"Authorization": f"Bearer {spec.api_key}"} if spec.api_key else {}
        self._http = httpx.Client(
            base_url=spec.url, headers=headers, timeout=spec.timeout_s, transport=httpx.HTTPTransport(retries=2)
        )

    def close(self) -> None:
        self._http.close()

    def check(self) -> None:
        """Fail before any generation when the judge is unreachable, refuses the key, or lacks the model."""
        response = self._call("GET", "/models")
        if response.status_code == 404:  # some servers do not list models; the first question will tell
            return
        self._raise_for(response)
        names = [item.get("id") for item in response.json().get("data", []) if isinstance(item, dict)]
        if names and self.spec.model not in names:
            raise MiltonError(
                f"judge {self.spec.url}: no model '{self.spec.model}' there; it serves {', '.join(map(str, names))}"
            )

    def ask(self, messages: list[dict[str, str]]) -> str:
        body = {"model": self.spec.model, "messages": messages, "temperature": 0, "max_tokens": self.spec.max_tokens}
        response = self._call("POST", "/chat/completions", json=body)
        self._raise_for(response)
        try:
            return str(response.json()["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError, ValueError):
            raise MiltonError(f"judge {self.spec.url}: the answer is not an OpenAI chat completion") from None

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise MiltonError(
                f"judge {self.spec.url}: {type(exc).__name__} ({exc}); start the judge or fix --judge-url"
            ) from None

    def _raise_for(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        try:
            message = response.json()["error"]["message"]
        except (KeyError, TypeError, ValueError):
            message = response.text[:200]
        hint = "; check --judge-api-key-env" if response.status_code in (401, 403) else ""
        raise MiltonError(f"judge {self.spec.url}: HTTP {response.status_code}: {message}{hint}")
