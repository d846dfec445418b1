"""The one small interface every LLM backend offers auto-interp: send a chat, get an answer.

A `ChatRequest` is everything that decides an answer (messages and sampling parameters), so it
is also the key of the on-disk request cache. A `Completion` is the answer's text, its token
counts and, where the backend gives them, the log-probabilities of the answer's tokens with the
most likely alternatives at each position (detection/fuzzing AUC and the simulator read them).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from saescope.errors import SaescopeError


class BackendError(SaescopeError):
    """A backend cannot serve requests at all (unreachable, no key, unknown model): stop the run."""


@dataclass(frozen=True)
class Message:
    role: str  # "system", "user" or "assistant"
    content: str


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[Message, ...]
    max_tokens: int = 200
    temperature: float = 0.0
    logprobs: bool = False
    top_logprobs: int = 0  # alternatives per answer token, when logprobs
    # a retry of a malformed answer is a different request (new key, new sample)
    attempt: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(data: dict[str, Any]) -> ChatRequest:
        return ChatRequest(
            messages=tuple(Message(**m) for m in data["messages"]),
            **{k: v for k, v in data.items() if k != "messages"},
        )

    def key(self, backend: str, model: str) -> str:
        """The cache key: (backend, model, prompt, sampling parameters)."""
        blob = json.dumps(
            {"backend": backend, "model": model, **self.to_json()},
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class TokenLogprob:
    token: str
    logprob: float
    top: dict[str, float] = field(default_factory=dict)  # alternative token -> logprob


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    logprobs: list[TokenLogprob] | None = None  # None: the backend gave none

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(data: dict[str, Any]) -> Completion:
        logprobs = data.get("logprobs")
        return Completion(
            text=data["text"],
            prompt_tokens=data.get("prompt_tokens", 0),
            completion_tokens=data.get("completion_tokens", 0),
            finish_reason=data.get("finish_reason"),
            logprobs=None if logprobs is None else [TokenLogprob(**t) for t in logprobs],
        )


class LLMBackend(Protocol):
    """What auto-interp needs of an LLM. `name` and `model` go into cache keys and results."""

    name: str
    model: str
    max_concurrency: int  # requests worth keeping in flight at once

    async def check(self) -> None:
        """Raise BackendError with a one-line reason when requests cannot be served."""
        ...

    async def complete(self, request: ChatRequest) -> Completion: ...

    async def aclose(self) -> None: ...
