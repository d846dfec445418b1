"""FeatureAccumulators: per-feature running statistics that merge exactly across batches and shards.

Fed sparse activations (feature, global token index, value) of every token seen; memory is
bounded by d_sae x (n_exact_top + buckets) and the co-firing sample, never by tokens x d_sae.

- counts, sums (float64), maxima;
- the n_exact_top largest activations with their token indices (ties broken by token index);
- a log-bucket sketch of the non-zero activations (histograms and quantile tables);
- interval samples: per feature, SAMPLE_BUCKETS equal-width value buckets over [0, 2^e) with
  2^e > max so far (e grows: bucket pairs merge), each keeping the items of lowest seeded
  hash priority: a uniform sample per value range that merges exactly;
- the sparse activations of an evenly spaced subset of tokens (co-firing correlations): every
  cofiring_stride-th token, at most AnalysisConfig.cofiring_tokens of them, kept as int32
  (sample row, feature, value bits) triplets: 12 bytes per activation, ~25 MB at the default
  65,536 tokens with 32 active features each, whatever the number of tokens analysed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from saescope.analysis.sketch import N_LOG_BUCKETS, log_bucket, select_per_group, token_priority

if TYPE_CHECKING:
    from saescope.analysis.config import AnalysisConfig
    from saescope.sae import SAE

SAMPLE_BUCKETS = 32
NO_RANGE = -1000  # sample range exponent of a feature never seen active
PAD_PRIORITY = 2**62  # above every real priority


class FeatureAccumulators:
    def __init__(
        self, d_sae: int, n_exact_top: int, per_bucket: int, cofiring_stride: int, seed: int
    ) -> None:
        self.d_sae, self.n_top, self.per_bucket = d_sae, n_exact_top, per_bucket
        self.cofiring_stride, self.seed = cofiring_stride, seed
        self.n_tokens = 0
        self.n_cofire_tokens = 0  # tokens in the co-firing sample (active or not)
        self.count = torch.zeros(d_sae, dtype=torch.int64)
        self.sum = torch.zeros(d_sae, dtype=torch.float64)
        self.max = torch.zeros(d_sae, dtype=torch.float32)
        self.top_vals = torch.full((d_sae, n_exact_top), -torch.inf)  # [d_sae, T] descending
        self.top_ids = torch.full((d_sae, n_exact_top), -1, dtype=torch.int64)
        self.hist = torch.zeros(d_sae, N_LOG_BUCKETS, dtype=torch.int64)
        self.sample_exp = torch.full((d_sae,), NO_RANGE, dtype=torch.int64)
        shape = (d_sae, SAMPLE_BUCKETS, per_bucket)
        self.sample_prio = torch.full(shape, PAD_PRIORITY, dtype=torch.int64)
        self.sample_vals = torch.zeros(shape)
        self.sample_ids = torch.full(shape, -1, dtype=torch.int64)
        # [3, m] int32 chunks: (sample row = token // cofiring_stride, feature, float32 value bits)
        self.cofire: list[torch.Tensor] = []

    # --- feeding ------------------------------------------------------------------------

    def update(
        self, features: torch.Tensor, tokens: torch.Tensor, values: torch.Tensor, seen: torch.Tensor
    ) -> None:
        """Absorb one batch: non-zero activations values [n] of features [n] at global token indices
        [n]; seen [m]: the global indices of every token of the batch analysed (active or not)."""
        keep = values > 0
        features, tokens, values = features[keep].long(), tokens[keep].long(), values[keep].float()
        self.n_tokens += len(seen)
        self.n_cofire_tokens += int((seen % self.cofiring_stride == 0).sum())
        self.count += torch.bincount(features, minlength=self.d_sae)
        self.sum.index_add_(0, features, values.double())
        self.max.scatter_reduce_(0, features, values, "amax")
        self.hist.view(-1).index_add_(
            0, features * N_LOG_BUCKETS + log_bucket(values), torch.ones_like(features)
        )
        self._absorb_top(features, tokens, values)
        self._absorb_samples(features, tokens, values, token_priority(features, tokens, self.seed))
        in_sample = tokens % self.cofiring_stride == 0
        if in_sample.any():
            rows = (tokens[in_sample] // self.cofiring_stride).int()
            bits = values[in_sample].view(torch.int32)
            self.cofire.append(torch.stack([rows, features[in_sample].int(), bits]))

    def merge(self, other: FeatureAccumulators) -> None:
        """Absorb another accumulator's state (e.g. another shard of the same corpus)."""
        if (other.d_sae, other.n_top, other.per_bucket, other.cofiring_stride, other.seed) != (
            self.d_sae,
            self.n_top,
            self.per_bucket,
            self.cofiring_stride,
            self.seed,
        ):
            raise ValueError("can only merge accumulators built with the same settings")
        self.n_tokens += other.n_tokens
        self.n_cofire_tokens += other.n_cofire_tokens
        self.count += other.count
        self.sum += other.sum
        self.max = torch.maximum(self.max, other.max)
        self.hist += other.hist
        valid = other.top_ids >= 0
        rows = torch.arange(self.d_sae)[:, None].expand_as(valid)
        self._absorb_top(rows[valid], other.top_ids[valid], other.top_vals[valid])
        valid = other.sample_prio < PAD_PRIORITY
        rows = torch.arange(self.d_sae)[:, None, None].expand_as(valid)
        self.sample_exp = torch.maximum(self.sample_exp, other.sample_exp)
        self._absorb_samples(
            rows[valid], other.sample_ids[valid], other.sample_vals[valid], other.sample_prio[valid]
        )
        self.cofire.extend(other.cofire)

    # --- the two selections ---------------------------------------------------------------

    def _absorb_top(
        self, features: torch.Tensor, tokens: torch.Tensor, values: torch.Tensor
    ) -> None:
        touched, local = torch.unique(features, return_inverse=True)
        if len(touched) == 0:
            return
        old_vals, old_ids = self.top_vals[touched], self.top_ids[touched]  # [G, T]
        old_rows = torch.arange(len(touched))[:, None].expand_as(old_vals)
        groups = torch.cat([old_rows.reshape(-1), local])
        vals = torch.cat([old_vals.reshape(-1), values])
        ids = torch.cat([old_ids.reshape(-1), tokens])
        # pads (-inf, id -1) sort after every real item, so they only fill empty slots
        index, rank = select_per_group(
            groups, [-vals, torch.where(ids < 0, 2**62, ids)], self.n_top
        )
        new_vals = torch.full_like(old_vals, -torch.inf)
        new_ids = torch.full_like(old_ids, -1)
        new_vals[groups[index], rank] = vals[index]
        new_ids[groups[index], rank] = ids[index]
        self.top_vals[touched], self.top_ids[touched] = new_vals, new_ids

    def _absorb_samples(
        self,
        features: torch.Tensor,
        tokens: torch.Tensor,
        values: torch.Tensor,
        priority: torch.Tensor,
    ) -> None:
        touched, local = torch.unique(features, return_inverse=True)
        if len(touched) == 0:
            return
        # the range grows to the next power of two above the largest value seen
        new_max = torch.zeros(len(touched)).scatter_reduce_(0, local, values, "amax")
        exponent = torch.maximum(self.sample_exp[touched], torch.frexp(new_max)[1].long())
        self.sample_exp[touched] = exponent
        old_prio = self.sample_prio[touched]  # [G, B, S]
        valid = old_prio < PAD_PRIORITY
        old_rows = torch.arange(len(touched))[:, None, None].expand_as(old_prio)
        rows = torch.cat([old_rows[valid], local])
        vals = torch.cat([self.sample_vals[touched][valid], values])
        ids = torch.cat([self.sample_ids[touched][valid], tokens])
        prio = torch.cat([old_prio[valid], priority])
        bucket = (vals.double() / torch.pow(2.0, exponent[rows].double()) * SAMPLE_BUCKETS).long()
        bucket = bucket.clamp(0, SAMPLE_BUCKETS - 1)
        index, rank = select_per_group(rows * SAMPLE_BUCKETS + bucket, [prio, ids], self.per_bucket)
        shape = (len(touched), SAMPLE_BUCKETS, self.per_bucket)
        new_prio = torch.full(shape, PAD_PRIORITY, dtype=torch.int64)
        new_vals, new_ids = torch.zeros(shape), torch.full(shape, -1, dtype=torch.int64)
        where = (rows[index], bucket[index], rank)
        new_prio[where], new_vals[where], new_ids[where] = prio[index], vals[index], ids[index]
        self.sample_prio[touched], self.sample_vals[touched], self.sample_ids[touched] = (
            new_prio,
            new_vals,
            new_ids,
        )

    # --- results ---------------------------------------------------------------------------

    def cofire_sample(self) -> torch.Tensor:
        """The co-firing sample as one [3, m] int32 tensor (sample row, feature, value bits), sorted
        by (row, feature): the same however the tokens were split into batches and shards."""
        if not self.cofire:
            return torch.zeros(3, 0, dtype=torch.int32)
        sample = torch.cat(self.cofire, dim=1)
        self.cofire = []  # the parts go before the sorted copy is made
        order = torch.argsort(sample[0].long() * self.d_sae + sample[1])
        self.cofire = [sample[:, order]]  # one sorted chunk from now on
        return self.cofire[0]

    def cofire_triplets(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(sample rows, features, values) of the co-firing sample, sorted by (row, feature):
        int32, int32, float32 views of cofire_sample()."""
        rows, features, bits = self.cofire_sample()
        return rows, features, bits.view(torch.float32)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            "n_tokens": torch.tensor(self.n_tokens),
            "n_cofire_tokens": torch.tensor(self.n_cofire_tokens),
            "count": self.count,
            "sum": self.sum,
            "max": self.max,
            "top_vals": self.top_vals,
            "top_ids": self.top_ids,
            "hist": self.hist,
            "sample_exp": self.sample_exp,
            "sample_prio": self.sample_prio,
            "sample_vals": self.sample_vals,
            "sample_ids": self.sample_ids,
            "cofire": self.cofire_sample(),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.n_tokens = int(state["n_tokens"])
        self.n_cofire_tokens = int(state["n_cofire_tokens"])
        for name in (
            "count",
            "sum",
            "max",
            "top_vals",
            "top_ids",
            "hist",
            "sample_exp",
            "sample_prio",
            "sample_vals",
            "sample_ids",
        ):
            if state[name].shape != getattr(self, name).shape:
                raise ValueError(f"checkpoint tensor {name} has shape {tuple(state[name].shape)}")
            setattr(self, name, state[name].clone())
        cofire = state["cofire"]
        # an older checkpoint: (global token, feature, value bits) as int64
        if cofire.dtype == torch.int64:
            cofire = torch.stack([cofire[0] // self.cofiring_stride, cofire[1], cofire[2]]).int()
        self.cofire = [cofire.clone()] if cofire.shape[1] else []


def accumulators_for(sae: SAE, cfg: AnalysisConfig) -> FeatureAccumulators:
    """Empty accumulators for every feature of the SAE, shaped by the analysis settings."""
    return FeatureAccumulators(
        sae.d_sae, cfg.n_exact_top, cfg.per_interval + 2, cfg.cofiring_stride, cfg.seed
    )
