"""Per-feature statistics from the merged accumulators: density, histograms, quantiles, samples, co-firing.

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
    [0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99,
     0.995, 0.998, 0.999, 0.9995, 0.9998, 0.9999, 1.0]
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
    hist.view(-1).index_add_(0, rows * N_LOG_BUCKETS + log_bucket(acc.top_vals[valid]), -torch.ones_like(rows))
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


def interval_samples(acc: FeatureAccumulators, n_intervals: int, per_interval: int) -> list[tuple[int, int, int, int, float]]:
    """(feature, interval, rank, token, value): up to per_interval samples of lowest hash priority
    from each equal-width interval (i/n * max, (i+1)/n * max], interval 0 the lowest."""
    valid = acc.sample_prio < PAD_PRIORITY
    features = torch.arange(acc.d_sae)[:, None, None].expand_as(valid)[valid]
    values, tokens, prio = acc.sample_vals[valid], acc.sample_ids[valid], acc.sample_prio[valid]
    top = acc.max[features].double().clamp_min(1e-30)
    interval = (torch.ceil(values.double() / top * n_intervals).long() - 1).clamp(0, n_intervals - 1)
    index, rank = select_per_group(features * n_intervals + interval, [prio, tokens], per_interval)
    return list(zip(features[index].tolist(), interval[index].tolist(), rank.tolist(),
                    tokens[index].tolist(), values[index].tolist(), strict=True))


def cofiring(acc: FeatureAccumulators, n_neighbours: int, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Most correlated features over the co-firing sample: Pearson correlation of activations
    (zeros included) -> ids [d_sae, n] (-1 where none) and correlations [d_sae, n]."""
    with warnings.catch_warnings():  # torch's notices that sparse tensors are "beta", on every call
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
        return _cofiring(acc, n_neighbours, chunk)


def _cofiring(acc: FeatureAccumulators, n_neighbours: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    tokens, features, values = acc.cofire_triplets()
    m, d_sae = max(acc.n_cofire_tokens, 1), acc.d_sae
    rows = torch.unique(tokens, return_inverse=True)[1]
    codes = torch.sparse_coo_tensor(torch.stack([rows, features]), values.double(), (int(rows.max()) + 1 if len(rows) else 1, d_sae)).coalesce()
    mean = torch.zeros(d_sae, dtype=torch.float64).index_add_(0, features, values.double()) / m
    mean_sq = torch.zeros(d_sae, dtype=torch.float64).index_add_(0, features, values.double() ** 2) / m
    var = (mean_sq - mean**2).clamp_min(0)
    # E[x^2] - E[x]^2 cancels to a tiny positive number for a feature constant over the sample
    # (active at one value on every sampled token): that is no variance, not a huge correlation
    std = torch.where(var > 1e-12 * mean_sq, var, 0.0).sqrt()
    codes_t = codes.t().coalesce().to_sparse_csr()
    codes_csr = codes.to_sparse_csr()
    k = min(n_neighbours, d_sae - 1)
    ids = np.full((d_sae, n_neighbours), -1, dtype=np.int64)
    corr = np.zeros((d_sae, n_neighbours), dtype=np.float32)
    for start in range(0, d_sae, chunk):
        stop = min(start + chunk, d_sae)
        block = _row_block(codes_t, start, stop)
        products = torch.sparse.mm(block, codes_csr).to_dense() / m  # [chunk, d_sae] E[x_a x_b]
        cov = products - mean[start:stop, None] * mean[None, :]
        denom = std[start:stop, None] * std[None, :]
        # no variance: no correlation (NaN, never a pick); rounding may step just outside [-1, 1]
        r = torch.where(denom > 0, cov / denom.clamp_min(1e-300), torch.nan).clamp(-1, 1)
        r[torch.arange(stop - start), torch.arange(start, stop)] = -torch.inf
        # NaN (undefined) never picked; nan_to_num would also turn -inf into -1.8e308, a "found" pick
        r = torch.where(torch.isnan(r), -torch.inf, r)
        best, where = r.topk(k, dim=1)
        found = torch.isfinite(best)
        ids[start:stop, :k] = torch.where(found, where, -1).numpy()
        corr[start:stop, :k] = torch.where(found, best, 0.0).numpy()
    return ids, corr


def _row_block(csr: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Rows start:stop of a CSR matrix, as CSR."""
    crow = csr.crow_indices()
    lo, hi = int(crow[start]), int(crow[stop])
    return torch.sparse_csr_tensor(crow[start : stop + 1] - lo, csr.col_indices()[lo:hi], csr.values()[lo:hi],
                                   (stop - start, csr.shape[1]))
