"""The embedded inference engine: one base model, any number of named LoRA adapters, a stable alias.

`milton` is an alias to a versioned adapter name (`<run_id>@<n>`), so a hot swap loads the new
version under a new name, checks it answers, then moves the alias and unloads the old version; a
name is never reloaded in place. Generation is serialized by a lock (one forward pass at a time on
a shared model); each request pins the adapter it resolved at its start, and an unload waits until
no request still pins it. Each generation runs in its own thread and frees the model and its adapter the
moment it ends: at end-of-turn, at its token budget, at its deadline, or when its client went away.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import StoppingCriteria, TextIteratorStreamer

from milton_lora.chat.prompts import render_prompt, stop_token_ids
from milton_lora.errors import MiltonError
from milton_lora.inference import Completion, completion_of, load_for_inference
from milton_lora.serve.protocol import ALIAS, DEFAULT_MAX_TOKENS

# What a busy server tells a client to wait before trying again.
BUSY_RETRY_AFTER_S = 2


class AdapterError(MiltonError):
    """A request that cannot be honoured; carries the HTTP status (what vLLM/OpenAI would answer), the
    OpenAI error code and, for a busy server, the seconds to wait (`Retry-After`)."""

    def __init__(self, message: str, status: int, code: str | None = None, param: str | None = None,
                 retry_after: int | None = None):  # fmt: skip
        super().__init__(message)
        self.status, self.code, self.param, self.retry_after = status, code, param, retry_after


def _budget(prompt_tokens: int, max_new_tokens: int | None, context: int) -> int:
    """The reply's token budget, or a 400 naming the numbers (OpenAI's wording) when it cannot fit."""
    limit = f"This model's maximum context length is {context} tokens. However, "
    if max_new_tokens is None:
        if prompt_tokens >= context:
            raise AdapterError(limit + f"your messages resulted in {prompt_tokens} tokens. Please reduce the length "
                               "of the messages.", 400, code="context_length_exceeded", param="messages")  # fmt: skip
        return min(DEFAULT_MAX_TOKENS, context - prompt_tokens)
    if prompt_tokens + max_new_tokens > context:
        raise AdapterError(
            limit + f"you requested {prompt_tokens + max_new_tokens} tokens ({prompt_tokens} in the messages, "
            f"{max_new_tokens} in the completion). Please reduce the length of the messages or completion.",
            400, code="context_length_exceeded", param="messages",
        )  # fmt: skip
    return max_new_tokens


class Generation:
    """One request's generation, run by a thread of the engine: the text pieces as they come (streams),
    `cancel()` (a client that went away), and once it ends the reply with its finish reason and counts.

    It stops at end-of-turn, at the token budget, at its deadline or when cancelled; all but the first are
    `finish_reason: "length"` (the reply was cut)."""

    def __init__(self, prompt_tokens: int, deadline: float, stream: bool, tokenizer: Any):
        self.prompt_tokens, self.deadline = prompt_tokens, deadline
        self.streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True) if stream else None
        self.cancelled = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: Exception | None = None
        self.completion: Completion | None = None

    def should_stop(self) -> bool:
        return self.cancelled.is_set() or time.monotonic() >= self.deadline

    def pieces(self) -> Iterator[str]:
        """The reply's text as it is generated (a streaming generation only)."""
        assert self.streamer is not None
        yield from (piece for piece in self.streamer if piece)

    def cancel(self) -> None:
        self.cancelled.set()

    def result(self) -> Completion:
        """Wait for the end; the whole reply, or the generation's error raised here."""
        assert self.thread is not None
        self.thread.join()
        if self.error is not None:
            raise self.error
        assert self.completion is not None
        return self.completion


class _StopWhen(StoppingCriteria):
    """Ends a generation between two tokens once `stop()` says so."""

    def __init__(self, stop: Any):
        self.stop = stop

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        return torch.full((input_ids.shape[0],), self.stop(), dtype=torch.bool, device=input_ids.device)


@dataclass
class _Adapter:
    path: Path
    pins: int = 0
    unloading: bool = False


@dataclass
class Engine:
    base_path: Path
    base_name: str
    model: Any = None
    tokenizer: Any = None
    adapters: dict[str, _Adapter] = field(default_factory=dict)
    alias_target: str | None = None
    _generate_lock: threading.Lock = field(default_factory=threading.Lock)
    _state_lock: threading.Condition = field(default_factory=threading.Condition)

    @classmethod
    def start(cls, base_path: Path, base_name: str | None = None) -> Engine:
        model, tokenizer = load_for_inference(base_path)
        return cls(base_path, base_name or base_path.name, model=model, tokenizer=tokenizer)

    # --- adapters -------------------------------------------------------------------------

    def names(self) -> list[str]:
        with self._state_lock:
            return [name for name, a in self.adapters.items() if not a.unloading]

    def load(self, name: str, path: Path) -> None:
        if not (path / "adapter_config.json").exists():
            raise AdapterError(f"Loading lora {name} failed: No adapter found for {path}", 400)
        with self._state_lock:
            if name in self.adapters or name == ALIAS:
                raise AdapterError(
                    f"The lora adapter '{name}' has already been loaded. If you want to load the adapter in "
                    "place, set 'load_inplace' to True.",
                    400,
                )
        from peft import PeftModel

        with self._generate_lock:
            if not self.adapters:
                self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=name).eval()
            else:
                self.model.load_adapter(str(path), adapter_name=name)
        with self._state_lock:
            self.adapters[name] = _Adapter(path)

    def unload(self, name: str) -> None:
        with self._state_lock:
            adapter = self.adapters.get(name)
            if adapter is None or adapter.unloading:
                raise AdapterError(f"The lora adapter '{name}' cannot be found.", 404)
            adapter.unloading = True
            if self.alias_target == name:
                self.alias_target = None
            while adapter.pins:
                self._state_lock.wait()
        with self._generate_lock:
            if len(self.adapters) == 1:
                self.model = self.model.unload()  # back to the plain base model
            else:
                self.model.delete_adapter(name)
        with self._state_lock:
            del self.adapters[name]

    def point_alias(self, name: str) -> str | None:
        """Make `milton` answer with adapter `name`; returns the previous target."""
        with self._state_lock:
            if name not in self.adapters:
                raise AdapterError(f"The lora adapter '{name}' cannot be found.", 404)
            previous, self.alias_target = self.alias_target, name
            return previous

    def _pin(self, model_name: str) -> str | None:
        """Resolve a request's model name once (None: the base) and keep that adapter loaded until unpinned."""
        with self._state_lock:
            if model_name == self.base_name:
                return None
            target = self.alias_target if model_name == ALIAS else model_name
            adapter = self.adapters.get(target or "")
            if adapter is None or adapter.unloading:
                raise AdapterError(f"The model `{model_name}` does not exist.", 404)
            adapter.pins += 1
            return target

    def _unpin(self, target: str | None) -> None:
        if target is not None:
            with self._state_lock:
                self.adapters[target].pins -= 1
                self._state_lock.notify_all()

    # --- generation -------------------------------------------------------------------------

    @property
    def context_length(self) -> int:
        """Tokens the base model attends to: prompt and reply together must fit."""
        config = self.model.config
        return int(getattr(config, "max_position_embeddings", None) or self.tokenizer.model_max_length)

    def begin(self, model_name: str, messages: list[dict[str, str]], max_new_tokens: int | None, deadline: float,
              stream: bool = False) -> Generation:  # fmt: skip
        """Start one request's generation in its own thread once the model is free.

        Refuses (400) a prompt that with `max_new_tokens` does not fit the context; without `max_new_tokens`
        the reply gets what is left, up to DEFAULT_MAX_TOKENS. Waits for the model until `deadline`
        (`time.monotonic()`), then answers busy (503); generation itself stops at the deadline too.
        """
        prompt = render_prompt(self.tokenizer, messages)
        budget = _budget(len(prompt), max_new_tokens, self.context_length)
        target = self._pin(model_name)
        if not self._generate_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            self._unpin(target)
            raise AdapterError("The server is busy: no generation slot freed before the request's deadline.", 503,
                               code="server_busy", retry_after=BUSY_RETRY_AFTER_S)  # fmt: skip
        generation = Generation(len(prompt), deadline, stream, self.tokenizer)
        thread = threading.Thread(target=self._generate, args=(generation, target, prompt, budget), daemon=True)
        generation.thread = thread
        thread.start()
        return generation

    def _generate(self, generation: Generation, target: str | None, prompt: list[int], budget: int) -> None:
        """The generation thread: holds the model until done, then frees it and the adapter at once."""
        try:
            ids = torch.tensor([prompt], device=next(self.model.parameters()).device)
            stops = stop_token_ids(self.tokenizer, self.model.generation_config)
            with self._using(target), torch.no_grad():
                output = self.model.generate(
                    input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=budget, do_sample=False,
                    eos_token_id=stops, pad_token_id=self.tokenizer.pad_token_id, streamer=generation.streamer,
                    stopping_criteria=[_StopWhen(generation.should_stop)],
                )  # fmt: skip
            generation.completion = completion_of(self.tokenizer, output[0, len(prompt) :].tolist(), len(prompt), stops)
        except Exception as exc:  # handed to the request, which answers 500
            generation.error = exc
        finally:
            if generation.streamer is not None:
                generation.streamer.end()  # unblock the reader (a second end() after generate's is harmless)
            self._generate_lock.release()
            self._unpin(target)

    @contextmanager
    def _using(self, target: str | None) -> Iterator[None]:
        """Select the adapter (or none) for one generation; the caller holds the generate lock."""
        if target is None:
            if self.adapters:
                with self.model.disable_adapter():
                    yield
            else:
                yield
            return
        self.model.set_adapter(target)
        yield
