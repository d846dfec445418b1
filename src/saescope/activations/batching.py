"""Re-cutting streams of context batches: (token_ids [n, ctx], {hook: acts [n, ctx, d]}) pairs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

ContextBatch = tuple[torch.Tensor, dict[str, torch.Tensor]]


def concat(parts: list[ContextBatch]) -> ContextBatch:
    if len(parts) == 1:
        return parts[0]
    tokens = torch.cat([t for t, _ in parts])
    return tokens, {h: torch.cat([a[h] for _, a in parts]) for h in parts[0][1]}


def slice_batch(batch: ContextBatch, start: int, stop: int | None = None) -> ContextBatch:
    tokens, acts = batch
    return tokens[start:stop], {h: a[start:stop] for h, a in acts.items()}


def take_contexts(batches: Iterable[ContextBatch], n: int) -> Iterator[ContextBatch]:
    """The first n contexts of a stream of context batches."""
    if n <= 0:
        return
    for batch in batches:
        batch = slice_batch(batch, 0, n)
        n -= batch[0].shape[0]
        yield batch
        if n <= 0:  # stop before asking the source for more (it may be a model forward)
            return


def rebatch(batches: Iterable[ContextBatch], size: int) -> Iterator[ContextBatch]:
    """Batches of exactly `size` contexts, whatever the input sizes; the last may be smaller."""
    pending: list[ContextBatch] = []
    n_pending = 0
    for batch in batches:
        pending.append(batch)
        n_pending += batch[0].shape[0]
        if n_pending < size:
            continue
        joined = concat(pending)
        whole = n_pending - n_pending % size
        for i in range(0, whole, size):
            yield slice_batch(joined, i, i + size)
        pending = [slice_batch(joined, whole)] if whole < n_pending else []
        n_pending -= whole
    if n_pending:
        yield concat(pending)


def drop_contexts(batches: Iterable[ContextBatch], n: int) -> Iterator[ContextBatch]:
    """Drop the first n contexts of a stream of context batches."""
    for batch in batches:
        size = batch[0].shape[0]
        if n >= size:
            n -= size
            continue
        yield slice_batch(batch, n) if n else batch
        n = 0
