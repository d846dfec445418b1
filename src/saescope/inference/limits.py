"""Time limits and memory budgets of inference jobs.

A job runs under `time_limit(deadline)`; the long loops (generation steps, chunks of features,
blocks of tokens, forwards of a batch) call `check_time()` between steps, so a job past its
limit stops at the next step instead of running to its end. `chunks(n, per_item, budget)` cuts
n items into runs whose tensors stay within a budget of elements.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar

from saescope.errors import SaescopeError

# Elements (float32: 64 MiB) of the per-chunk tensors of one step of prompt inference: the
# [rows, d_sae] pre-activations of an encode, the [features, d_sae] ablations and the
# [features, d_vocab] logits of the effects on the next token.
CHUNK_ELEMENTS = 16 * 2**20

# (the monotonic time the running job must stop at, its limit in seconds), None: no limit
_deadline: ContextVar[tuple[float, float] | None] = ContextVar("saescope_deadline", default=None)


class TimeLimitExceeded(SaescopeError):
    """An inference job ran (or waited) past its time limit and was stopped."""


@contextlib.contextmanager
def time_limit(deadline: float | None, limit_s: float | None = None) -> Iterator[None]:
    """Run the block under a deadline (time.monotonic() seconds; None: no limit). `limit_s`
    is what the error message quotes (default: the time left now)."""
    if deadline is None:
        yield
        return
    quoted = limit_s if limit_s is not None else max(0.0, deadline - time.monotonic())
    token = _deadline.set((deadline, quoted))
    try:
        yield
    finally:
        _deadline.reset(token)


def check_time() -> None:
    """Raise TimeLimitExceeded when the running job is past its deadline."""
    limit = _deadline.get()
    if limit is not None and time.monotonic() > limit[0]:
        raise TimeLimitExceeded(
            f"the request ran past its time limit of {limit[1]:g} s and was stopped; "
            "try a shorter text, fewer new tokens, or again when the server is less busy."
        )


def chunks(n: int, per_item: int, budget: int = CHUNK_ELEMENTS) -> Iterator[slice]:
    """Slices of range(n), each of as many items as fit in `budget` elements at `per_item`
    elements an item (one at least); the deadline is checked before each."""
    step = max(1, budget // max(1, per_item))
    for start in range(0, n, step):
        check_time()
        yield slice(start, min(n, start + step))
