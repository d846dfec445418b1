"""Every LLM request goes through here: an on-disk cache of raw requests and answers, a budget
guard, and running token counts.

The cache is one SQLite file keyed by (backend, model, prompt, sampling parameters); an answer
is committed the moment it arrives, so a run killed at any point resumes without repeating a
request that was answered (one still in flight when it died is sent again). Cached answers
cost nothing: they count neither against the budget nor in the token counts of this run.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from saescope.autointerp.backend import BackendError, ChatRequest, Completion, LLMBackend

CACHE_FILE = "requests.sqlite"


class BudgetExceeded(BackendError):
    """The run has sent max_requests requests; what is left stays undone (and resumable)."""


@dataclass
class Usage:
    """What this run sent: requests answered by the backend / the cache, and token counts."""

    requests: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class RequestCache:
    """(key -> request, answer) rows in a SQLite file; one writer, committed per answer."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if path.is_dir() or not path.suffix:
            path.mkdir(parents=True, exist_ok=True)
            path = path / CACHE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, backend TEXT, model TEXT,"
            " request TEXT, answer TEXT, created REAL)"
        )

    def get(self, key: str) -> Completion | None:
        row = self._db.execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
        return None if row is None else Completion.from_json(json.loads(row[0]))

    def put(
        self, key: str, backend: str, model: str, request: ChatRequest, answer: Completion
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?)",
            (
                key,
                backend,
                model,
                json.dumps(request.to_json(), ensure_ascii=False),
                json.dumps(answer.to_json(), ensure_ascii=False),
                time.time(),
            ),
        )

    def requests(self) -> list[ChatRequest]:
        """Every cached request (to inspect what a run has been answered)."""
        rows = self._db.execute("SELECT request FROM answers ORDER BY created").fetchall()
        return [ChatRequest.from_json(json.loads(row[0])) for row in rows]

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        self._db.close()


class LLMClient:
    """A backend behind the cache and the budget: what explainers and scorers call."""

    def __init__(
        self,
        backend: LLMBackend,
        cache: RequestCache | None = None,
        max_requests: int | None = None,
    ) -> None:
        if max_requests is not None and max_requests < 0:
            raise BackendError(f"max_requests: got {max_requests!r}; expected >= 0 or None.")
        self.backend, self.cache, self.max_requests = backend, cache, max_requests
        self.usage = Usage()
        self._sent = 0  # requests started (in flight included), for the budget

    async def complete(self, request: ChatRequest) -> Completion:
        key = request.key(self.backend.name, self.backend.model)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.usage.cached += 1
                return hit
        if self.max_requests is not None and self._sent >= self.max_requests:
            raise BudgetExceeded(
                f"max_requests: the budget of {self.max_requests} requests is spent; "
                "run again (answers so far are cached) with a larger budget to go on."
            )
        self._sent += 1
        answer = await self.backend.complete(request)
        self.usage.requests += 1
        self.usage.prompt_tokens += answer.prompt_tokens
        self.usage.completion_tokens += answer.completion_tokens
        if self.cache is not None:
            self.cache.put(key, self.backend.name, self.backend.model, request, answer)
        return answer
