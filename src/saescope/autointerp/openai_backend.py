"""An OpenAI-compatible chat server as an auto-interp backend, through the official async client.

Works against OpenAI, OpenRouter, `vllm serve`, llama.cpp's server, Ollama and `transformers
serve`. The API key is read from an environment variable the user names; the key itself is never
stored, logged or shown in an error (errors name the base URL, without any credentials in it).
Rate limits, server errors and timeouts are retried with exponential backoff; a server that
cannot be reached, a missing key variable or a model the server does not list fail at once.
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import openai

from saescope.autointerp.backend import BackendError, ChatRequest, Completion, TokenLogprob

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


def shown_url(url: str) -> str:
    """The URL without user:password@ or a query string, fit for an error message."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible server (base_url like http://host:8000/v1)."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        max_concurrency: int = 8,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise BackendError(
                f"base_url: got {shown_url(base_url)!r}; expected an http:// or https:// URL "
                "of an OpenAI-compatible server, such as http://127.0.0.1:8000/v1."
            )
        if max_concurrency < 1:
            raise BackendError(f"max_concurrency: got {max_concurrency!r}; expected >= 1.")
        self.base_url, self.model = base_url, model
        self.max_concurrency, self.max_retries, self.backoff_s = (
            max_concurrency,
            max_retries,
            backoff_s,
        )
        self._where = shown_url(base_url)
        self._api_key, self._timeout_s = _api_key(api_key_env), timeout_s
        # the async client and the slots belong to one event loop: made anew in each
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client_now: openai.AsyncOpenAI | None = None
        self._slots_now: asyncio.Semaphore | None = None
        self._logprobs_refused = False  # the server rejected the logprobs parameter once

    @property
    def _client(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        if self._client_now is None or self._loop is not loop:
            self._loop = loop
            self._client_now = openai.AsyncOpenAI(
                base_url=self.base_url,
                api_key=self._api_key,
                timeout=self._timeout_s,
                max_retries=0,  # retried here, so that an unreachable server fails at once
            )
            self._slots_now = asyncio.Semaphore(self.max_concurrency)
        return self._client_now

    @property
    def _slots(self) -> asyncio.Semaphore:
        self._client  # noqa: B018 (makes the slots of this loop)
        assert self._slots_now is not None
        return self._slots_now

    async def check(self) -> None:
        """Reach the server and look the model up in its /models list (when it has one)."""
        try:
            listed = [m.id async for m in self._client.models.list()]
        except openai.APIConnectionError as err:
            raise BackendError(
                f"LLM server {self._where} cannot be reached ({_reason(err)}); "
                "is it running, and is base_url right?"
            ) from None
        except openai.AuthenticationError:
            raise BackendError(
                f"LLM server {self._where} refused the API key (HTTP 401): check the key "
                "in the variable named by api_key_env."
            ) from None
        except openai.NotFoundError:
            return  # a server without GET /models: the first request will tell
        except openai.APIStatusError as err:
            raise BackendError(
                f"LLM server {self._where} answered GET /models with HTTP {err.status_code}."
            ) from None
        if listed and self.model not in listed:
            shown = ", ".join(listed[:10]) + (" ..." if len(listed) > 10 else "")
            raise BackendError(
                f"model: got {self.model!r}; the LLM server {self._where} serves {shown}."
            )

    async def complete(self, request: ChatRequest) -> Completion:
        async with self._slots:
            for attempt in range(self.max_retries + 1):
                try:
                    return await self._once(request)
                except (openai.APITimeoutError, openai.APIStatusError) as err:
                    status = getattr(err, "status_code", 408)
                    if status == 404:
                        raise BackendError(
                            f"model: {self.model!r} is not served by the LLM server "
                            f"{self._where} (HTTP 404: {_reason(err)})."
                        ) from None
                    if status == 401:
                        raise BackendError(
                            f"LLM server {self._where} refused the API key (HTTP 401)."
                        ) from None
                    if status not in RETRY_STATUS or attempt == self.max_retries:
                        raise
                    await asyncio.sleep(self._delay(attempt, err))
                except openai.APIConnectionError as err:
                    if attempt == self.max_retries:
                        raise BackendError(
                            f"LLM server {self._where} cannot be reached ({_reason(err)})."
                        ) from None
                    await asyncio.sleep(self._delay(attempt, err))
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        if self._client_now is not None and self._loop is asyncio.get_running_loop():
            await self._client_now.close()
        self._client_now, self._slots_now, self._loop = None, None, None

    async def _once(self, request: ChatRequest) -> Completion:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.logprobs and not self._logprobs_refused:
            kwargs["logprobs"] = True
            if request.top_logprobs:
                kwargs["top_logprobs"] = request.top_logprobs
        try:
            response = await self._client.chat.completions.create(**kwargs)
        except openai.BadRequestError as err:
            if "logprobs" not in kwargs or "logprob" not in str(err).lower():
                raise
            self._logprobs_refused = True  # answer without them, from the text
            kwargs.pop("logprobs")
            kwargs.pop("top_logprobs", None)
            response = await self._client.chat.completions.create(**kwargs)
        return _completion(response)

    def _delay(self, attempt: int, err: Exception) -> float:
        """Exponential backoff with jitter; a server's Retry-After wins when it sends one."""
        response = getattr(err, "response", None)
        retry_after = response.headers.get("retry-after") if response is not None else None
        if retry_after:
            try:
                return min(float(retry_after), 60.0)
            except ValueError:
                pass
        return self.backoff_s * (2**attempt) * (0.5 + random.random())


def _api_key(variable: str | None) -> str:
    if variable is None:
        return "unused"  # local servers want no key, but the client insists on one
    value = os.environ.get(variable)
    if not value:
        raise BackendError(
            f"api_key_env: the environment variable {variable!r} is not set (or empty); "
            "set it to the API key, or leave api_key_env out for a server without keys."
        )
    return value


def _reason(err: Exception) -> str:
    cause = err.__cause__ or err.__context__
    text = str(cause or err).strip().splitlines()
    return (text[0] if text else type(err).__name__).rstrip(".")


def _completion(response: Any) -> Completion:
    choice = response.choices[0]
    usage = response.usage
    logprobs = None
    content = getattr(choice.logprobs, "content", None) if choice.logprobs is not None else None
    if content:
        logprobs = [
            TokenLogprob(
                token=t.token,
                logprob=float(t.logprob),
                top={alt.token: float(alt.logprob) for alt in (t.top_logprobs or [])},
            )
            for t in content
        ]
    return Completion(
        text=choice.message.content or "",
        prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
        finish_reason=choice.finish_reason,
        logprobs=logprobs,
    )
