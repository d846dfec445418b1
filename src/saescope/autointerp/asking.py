"""Ask the LLM one prompt until its answer parses, a bounded number of times.

The first try is at the caller's temperature; a retry samples (a new request, so a new cache
key) since the same request would bring back the same answer. An answer that never parses,
or a request the backend failed on after its own retries, is recorded and given up on; only
a backend that cannot serve at all (BackendError, BudgetExceeded) stops the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from saescope.autointerp.backend import BackendError, ChatRequest, Completion, Message
from saescope.autointerp.cache import LLMClient
from saescope.autointerp.parsers import Parsed
from saescope.autointerp.results import Attempt

RETRY_TEMPERATURE = 0.7


@dataclass
class Asked:
    parsed: Parsed
    completion: Completion | None
    attempts: list[Attempt] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0


async def ask(
    client: LLMClient,
    messages: tuple[Message, ...],
    parse: Callable[[Completion], Parsed],
    *,
    max_tokens: int,
    temperature: float = 0.0,
    logprobs: bool = False,
    n_retries: int = 2,
    accept: tuple[str, ...] = ("ok",),
) -> Asked:
    """The first answer whose parse status is in `accept`; else the last usable one, else the
    last answer (with its failed parse)."""
    asked = Asked(Parsed("empty", error="not asked"), None)
    fallback: Asked | None = None
    for attempt in range(n_retries + 1):
        request = ChatRequest(
            messages=messages,
            max_tokens=max_tokens,
            temperature=temperature if attempt == 0 else max(temperature, RETRY_TEMPERATURE),
            logprobs=logprobs,
            top_logprobs=5 if logprobs else 0,
            attempt=attempt,
        )
        try:
            completion = await client.complete(request)
        except BackendError:
            raise
        except Exception as err:  # a failed request is recorded, never fatal
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            asked.attempts.append(Attempt("", "error", f"{type(err).__name__}: {reason}"))
            asked.parsed = Parsed("error", error=reason)
            continue
        parsed = parse(completion)
        asked.attempts.append(Attempt(completion.text, parsed.status, parsed.error))
        asked.prompt_tokens += completion.prompt_tokens
        asked.completion_tokens += completion.completion_tokens
        asked.parsed, asked.completion = parsed, completion
        if parsed.status in accept:
            return asked
        if parsed.usable:
            fallback = Asked(parsed, completion)
    if fallback is not None:
        fallback.attempts = asked.attempts
        fallback.prompt_tokens, fallback.completion_tokens = (
            asked.prompt_tokens,
            asked.completion_tokens,
        )
        return fallback
    return asked
