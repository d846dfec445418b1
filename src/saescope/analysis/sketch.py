"""Small exact building blocks of the mergeable accumulators.

- `select_per_group`: keep the first s items of every group under a total order (the
  primitive of the top-k lists and of bottom-k-by-hash sampling: both merge exactly, since
  the best s of a union are among the best s of each part).
- `token_priority`: a seeded hash of (feature, token): a uniform random priority that is the
  same however the tokens are split into batches or shards.
- log-bucket sketch: fixed buckets of float32 values, 32 per octave from 2^-12 to 2^12
  (relative width 1/32), so histograms and quantile tables add across shards.
"""

from __future__ import annotations

import torch

E_MIN, E_MAX, SUB = -12, 12, 32  # octaves 2^E_MIN .. 2^E_MAX, SUB buckets per octave
N_LOG_BUCKETS = (E_MAX - E_MIN) * SUB + 2  # + underflow bucket 0 and overflow bucket -1
_MASK62 = (1 << 62) - 1


def select_per_group(
    groups: torch.Tensor, keys: list[torch.Tensor], s: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first s items of each group, ordered by keys (first key first, ascending).

    groups, keys: [n]. Returns (indices [m] into the inputs, rank [m] within the group)."""
    order = torch.arange(len(groups))
    for key in reversed(keys):  # stable sorts from the last key to the first = lexicographic
        order = order[torch.argsort(key[order], stable=True)]
    order = order[torch.argsort(groups[order], stable=True)]
    g = groups[order]
    position = torch.arange(len(g))
    first = torch.ones(len(g), dtype=torch.bool)
    first[1:] = g[1:] != g[:-1]
    group_start = (
        torch.cummax(torch.where(first, position, 0), dim=0).values if len(g) else position
    )
    rank = position - group_start
    keep = rank < s
    return order[keep], rank[keep]


def token_priority(features: torch.Tensor, tokens: torch.Tensor, seed: int) -> torch.Tensor:
    """A deterministic pseudo-random int64 in [0, 2^62) per (feature, global token index)."""
    x = (tokens * 0x2545F491 + features * 0x9E3779B9 + seed * 0x632BE59B) & _MASK62
    for shift, mult in ((33, 0xFF51AFD7ED558CCD), (29, 0xC4CEB9FE1A85EC53)):
        x = (x ^ (x >> shift)) & _MASK62
        x = (x * (mult & _MASK62)) & _MASK62  # int64 products wrap; the mask keeps them positive
    return x ^ (x >> 31)


def log_bucket(values: torch.Tensor) -> torch.Tensor:
    """float values > 0 [n] -> sketch bucket [n] in 0..N_LOG_BUCKETS-1."""
    # values = mantissa * 2^exponent, mantissa in [0.5, 1)
    mantissa, exponent = torch.frexp(values.float())
    octave = exponent.long() - 1
    sub = ((mantissa * 2 - 1) * SUB).long().clamp(0, SUB - 1)
    bucket = 1 + (octave - E_MIN) * SUB + sub
    bucket = torch.where(octave < E_MIN, 0, bucket)
    return torch.where(octave >= E_MAX, N_LOG_BUCKETS - 1, bucket)


def log_bucket_edges() -> torch.Tensor:
    """[N_LOG_BUCKETS + 1] float64 edges; the underflow bucket starts at 0, overflow ends at inf."""
    octaves = torch.arange(E_MIN, E_MAX, dtype=torch.float64).repeat_interleave(SUB)
    subs = torch.arange(SUB, dtype=torch.float64).repeat(E_MAX - E_MIN)
    lower = 2.0**octaves * (1 + subs / SUB)
    return torch.cat([torch.tensor([0.0]), lower, torch.tensor([2.0**E_MAX, float("inf")])])
