"""Per-feature statistics from the merged accumulators: density, histograms, quantiles, samples,
co-firing.

Exactness: counts, sums, maxima and the top activations are exact. Histogram bins and
quantile values use the exact top activations (n_exact_top per feature) and, below them,
the log-bucket sketch: a sketch bucket goes to the linear bin holding its midpoint, and a
quantile that falls in a bucket reads its midpoint (relative error <= 1/64).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from saescope.analysis.accumulators import PAD_PRIORITY, FeatureAccumulators
from saescope.analysis.sketch import (
    E_MIN,
    N_LOG_BUCKETS,
    log_bucket,
    log_bucket_edges,
    select_per_group,
)

# Fractions of a feature's non-zero activations: coarse in the bulk, fine near the top.
QUANTILE_LEVELS = np.array(
    [
        0.0,
        0.01,
        0.05,
        0.1,
        0.2,
        0.3,
        0.4,
        0.5,
        0.6,
        0.7,
        0.8,
        0.9,
        0.95,
        0.98,
        0.99,
        0.995,
        0.998,
        0.999,
        0.9995,
        0.9998,
        0.9999,
        1.0,
    ]
)


def bucket_midpoints() -> torch.Tensor:
    edges = log_bucket_edges()
    mid = (edges[:-1] + edges[1:]) / 2
    mid[0] = 2.0 ** (E_MIN - 1)
    mid[-1] = edges[-2]
    return mid  # [N_LOG_BUCKETS] float64


def sketch_without_top(acc: FeatureAccumulators) -> torch.Tensor:
    """The log-bucket counts [d_sae, N_LOG_BUCKETS] of the activations below the exact top list."""
    hist = acc.hist.clone()
    valid = acc.top_ids >= 0
    rows = torch.arange(acc.d_sae)[:, None].expand_as(valid)[valid]
    hist.view(-1).index_add_(
        0, rows * N_LOG_BUCKETS + log_bucket(acc.top_vals[valid]), -torch.ones_like(rows)
    )
    return hist


def activation_histogram(acc: FeatureAccumulators, n_bins: int) -> np.ndarray:
    """Counts [d_sae, n_bins] of the non-zero activations over linear bins from 0 to max_act."""
    top = acc.max.double().clamp_min(1e-30)[:, None]  # [d_sae, 1]
    counts = torch.zeros(acc.d_sae, n_bins, dtype=torch.int64)
    rest = sketch_without_top(acc)
    mid = torch.minimum(bucket_midpoints()[None, :], top)  # [d_sae, N_LOG_BUCKETS]
    bins = (mid / top * n_bins).long().clamp(0, n_bins - 1)
    counts.scatter_add_(1, bins, rest)
    valid = acc.top_ids >= 0
    exact_bins = (acc.top_vals.double() / top * n_bins).long().clamp(0, n_bins - 1)
    counts.scatter_add_(1, torch.where(valid, exact_bins, 0), valid.long())
    return counts.numpy()


def quantile_table(acc: FeatureAccumulators, levels: np.ndarray = QUANTILE_LEVELS) -> np.ndarray:
    """Values [d_sae, n_levels]: the value at index floor(q * (n - 1)) of each feature's sorted
    non-zero activations (numpy's method='lower'); 0 for a feature never active."""
    n = acc.count[:, None]  # [d_sae, 1]
    q = torch.as_tensor(levels, dtype=torch.float64)[None, :]
    index = torch.floor(q * (n - 1).clamp_min(0)).long()  # ascending index [d_sae, L]
    from_top = n - 1 - index  # rank from the top
    n_exact = (acc.top_ids >= 0).sum(dim=1, keepdim=True)
    exact = acc.top_vals.gather(1, from_top.clamp(0, acc.n_top - 1)).double()
    cumulative = acc.hist.cumsum(dim=1)  # [d_sae, B]
    bucket = torch.searchsorted(cumulative, index, right=True).clamp(max=N_LOG_BUCKETS - 1)
    sketched = torch.minimum(bucket_midpoints()[bucket], acc.max.double()[:, None])
    values = torch.where(from_top < n_exact, exact, sketched)
    return torch.where(n > 0, values, 0.0).float().numpy()


def interval_samples(
    acc: FeatureAccumulators,
    n_intervals: int,
    per_interval: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(feature, interval, rank, token, value), columns [n]: up to per_interval samples of lowest
    hash priority from each equal-width interval (i/n * max, (i+1)/n * max], the lowest first."""
    valid = acc.sample_prio < PAD_PRIORITY
    features = torch.arange(acc.d_sae)[:, None, None].expand_as(valid)[valid]
    values, tokens, prio = acc.sample_vals[valid], acc.sample_ids[valid], acc.sample_prio[valid]
    top = acc.max[features].double().clamp_min(1e-30)
    interval = (torch.ceil(values.double() / top * n_intervals).long() - 1).clamp(
        0, n_intervals - 1
    )
    index, rank = select_per_group(features * n_intervals + interval, [prio, tokens], per_interval)
    return features[index], interval[index], rank, tokens[index], values[index]


# Bytes for one block of feature rows of the co-firing correlations: the dense [block, d_sae]
# float64 rows and the sparse product they come from (up to 3x as large), so the block
# shrinks as d_sae grows instead of the memory growing with it.
COFIRING_BLOCK_BYTES = 64 * 2**20


def cofiring(acc: FeatureAccumulators, n_neighbours: int) -> tuple[np.ndarray, np.ndarray]:
    """Most correlated features over the co-firing sample: Pearson correlation of activations
    (zeros included) -> ids [d_sae, n] (-1 where none) and correlations [d_sae, n]."""
    with warnings.catch_warnings():  # torch's notices that sparse tensors are "beta", on every call
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
        return _cofiring(acc, n_neighbours)


def _cofiring(acc: FeatureAccumulators, n_neighbours: int) -> tuple[np.ndarray, np.ndarray]:
    rows, features, values = acc.cofire_triplets()  # sorted by (sample row, feature)
    m, d_sae = max(acc.n_cofire_tokens, 1), acc.d_sae
    mean, std = _moments(features, values, m, d_sae)
    n_rows = int(rows.max()) + 1 if len(rows) else 1
    by_token = _csr(rows, features, values, (n_rows, d_sae))  # [sample rows, d_sae]
    order = torch.argsort(features, stable=True)  # (feature, row) order: the transpose, row by row
    by_feature = _csr(features[order], rows[order], values[order], (d_sae, n_rows))
    del order
    has_var = std > 0
    k = min(n_neighbours, d_sae - 1)
    ids = np.full((d_sae, n_neighbours), -1, dtype=np.int64)
    corr = np.zeros((d_sae, n_neighbours), dtype=np.float32)
    block = max(1, COFIRING_BLOCK_BYTES // (4 * 8 * d_sae))
    for start in range(0, d_sae, block):
        stop = min(start + block, d_sae)
        # in place from the sums: E[x_a x_b] -> covariance -> correlation [block, d_sae]
        r = torch.sparse.mm(_row_block(by_feature, start, stop), by_token).to_dense().div_(m)
        r.addr_(mean[start:stop], mean, alpha=-1).div_(std[start:stop, None]).div_(std)
        # rounding may step just outside [-1, 1]; no variance: no correlation (never a pick)
        r.clamp_(-1, 1)
        r[~has_var[start:stop]] = -torch.inf
        r[:, ~has_var] = -torch.inf
        r[torch.arange(stop - start), torch.arange(start, stop)] = -torch.inf
        best, where = r.topk(k, dim=1)
        found = torch.isfinite(best)
        ids[start:stop, :k] = torch.where(found, where, -1).numpy()
        corr[start:stop, :k] = torch.where(found, best, 0.0).numpy()
    return ids, corr


def _moments(
    features: torch.Tensor, values: torch.Tensor, m: int, d_sae: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation [d_sae] (float64) of each feature over m tokens, zeros too."""
    values = values.double()
    mean = torch.zeros(d_sae, dtype=torch.float64).index_add_(0, features, values) / m
    mean_sq = torch.zeros(d_sae, dtype=torch.float64).index_add_(0, features, values * values) / m
    var = (mean_sq - mean**2).clamp_min(0)
    # E[x^2] - E[x]^2 cancels to a tiny positive number for a feature constant over the sample
    # (active at one value on every sampled token): that is no variance, not a huge correlation
    return mean, torch.where(var > 1e-12 * mean_sq, var, 0.0).sqrt()


def _csr(
    rows: torch.Tensor, columns: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]
) -> torch.Tensor:
    """A float64 CSR matrix with int32 indices from entries sorted by (row, column)."""
    crow = torch.zeros(shape[0] + 1, dtype=torch.int32)
    crow[1:] = torch.bincount(rows, minlength=shape[0]).cumsum(0)
    return torch.sparse_csr_tensor(crow, columns.int(), values.double(), shape)


def _row_block(csr: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Rows start:stop of a CSR matrix, as CSR."""
    crow = csr.crow_indices()
    lo, hi = int(crow[start]), int(crow[stop])
    return torch.sparse_csr_tensor(
        crow[start : stop + 1] - lo,
        csr.col_indices()[lo:hi],
        csr.values()[lo:hi],
        (stop - start, csr.shape[1]),
    )
