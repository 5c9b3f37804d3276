"""The embedded inference engine: one base model, any number of named LoRA adapters, a stable alias.

`milton` is an alias to a versioned adapter name (`<run_id>@<n>`), so a hot swap loads the new
version under a new name, checks it answers, then moves the alias and unloads the old version; a
name is never reloaded in place. Generation is serialized by a lock (one forward pass at a time on
a shared model); each request pins the adapter it resolved at its start, and an unload waits until
no request still pins it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from milton_lora.chat.prompts import render_prompt, stop_token_ids
from milton_lora.errors import MiltonError
from milton_lora.inference import Completion, complete, load_for_inference
from milton_lora.serve.protocol import ALIAS


class AdapterError(MiltonError):
    """A load/unload request that cannot be honoured; carries the HTTP status vLLM would answer with."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


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

    @contextmanager
    def pinned(self, model_name: str) -> Iterator[str | None]:
        """Resolve a request's model name once (None: the base) and keep that adapter loaded until done."""
        with self._state_lock:
            if model_name == self.base_name:
                target = None
            else:
                target = self.alias_target if model_name == ALIAS else model_name
                adapter = self.adapters.get(target or "")
                if adapter is None or adapter.unloading:
                    raise AdapterError(f"The model `{model_name}` does not exist.", 404)
                adapter.pins += 1
        try:
            yield target
        finally:
            if target is not None:
                with self._state_lock:
                    self.adapters[target].pins -= 1
                    self._state_lock.notify_all()

    # --- generation -------------------------------------------------------------------------

    def complete(self, target: str | None, messages: list[dict[str, str]], max_new_tokens: int) -> Completion:
        with self._generate_lock, self._using(target):
            return complete(self.model, self.tokenizer, [messages], max_new_tokens, batch_size=1)[0]

    def stream(self, target: str | None, messages: list[dict[str, str]], max_new_tokens: int) -> Iterator[str]:
        """Text pieces as they are generated (generation runs in a thread; the lock is held until it ends)."""
        import torch
        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        prompt = torch.tensor([render_prompt(self.tokenizer, messages)], device=next(self.model.parameters()).device)
        stops = stop_token_ids(self.tokenizer, self.model.generation_config)

        def run() -> None:
            try:
                with self._using(target), torch.no_grad():
                    self.model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), streamer=streamer,
                                        max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=stops,
                                        pad_token_id=self.tokenizer.pad_token_id)  # fmt: skip
            except Exception:
                streamer.end()  # unblock the reader; the error is logged by the thread
                raise

        self._generate_lock.acquire()
        thread = threading.Thread(target=self._release_after, args=(run,), daemon=True)
        thread.start()
        yield from (piece for piece in streamer if piece)
        thread.join()

    def _release_after(self, work: Any) -> None:
        try:
            work()
        finally:
            self._generate_lock.release()

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
