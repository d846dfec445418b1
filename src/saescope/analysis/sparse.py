"""Feature activations as their non-zero entries: what both analysis passes read.

A dense [tokens, d_sae] activation tensor is mostly zeros (L0 of tens against tens of thousands of
features); for a 32k-feature SAE a batch of 16 contexts is 268 MiB of them, and filling and
indexing it cost the example pass more than encoding. TopK SAEs give their k per token directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from saescope.sae import SAE, InputStats


def sparse_codes(sae: SAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x [n, d_in] -> (token row [m], feature [m], value [m]) of the non-zero activations.

    The architecture decides how (SAE.sparse_codes): TopK SAEs give their k per token directly.
    """
    return sae.sparse_codes(x)


@dataclass
class SparseActs:
    """The non-zero activations of a batch of positions [b, length], looked
    up by (row, position, feature)."""

    keys: torch.Tensor  # [m] sorted: (row * length + position) * d_sae + feature
    values: torch.Tensor  # [m] float32
    length: int
    d_sae: int

    @classmethod
    def encode(
        cls, sae: SAE, x: torch.Tensor, skip_first: bool
    ) -> tuple[SparseActs, InputStats | None]:
        """x [b, length, d_in] -> (its activations, the SAE's input statistics [b, length, 1]);
        skip_first: position 0 (BOS, not analysed) reads as inactive."""
        b, length, _ = x.shape
        with torch.no_grad():
            _, stats = sae.normalize_input(x.to(sae.dtype))
            rows, features, values = sparse_codes(sae, x.reshape(b * length, -1))
        if skip_first:
            keep = rows % length != 0
            rows, features, values = rows[keep], features[keep], values[keep]
        keys, order = torch.sort(rows.cpu() * sae.d_sae + features.cpu())
        return cls(keys, values.cpu()[order], length, sae.d_sae), stats

    def get(
        self, rows: torch.Tensor, positions: torch.Tensor, features: torch.Tensor
    ) -> torch.Tensor:
        """Activations at (rows, positions, features) (broadcast together); 0 where inactive."""
        wanted = (rows * self.length + positions) * self.d_sae + features
        at = torch.searchsorted(self.keys, wanted).clamp_max(max(len(self.keys) - 1, 0))
        if not len(self.keys):
            return torch.zeros(wanted.shape)
        return torch.where(self.keys[at] == wanted, self.values[at], 0.0)

    def dense(self, row: int, lo: int, hi: int) -> torch.Tensor:
        """[hi - lo, d_sae]: every feature's activations at positions [lo, hi) of one row."""
        start, end = (
            int(torch.searchsorted(self.keys, (row * self.length + p) * self.d_sae))
            for p in (lo, hi)
        )
        out = torch.zeros(hi - lo, self.d_sae)
        where = self.keys[start:end] - (row * self.length + lo) * self.d_sae
        out.view(-1)[where] = self.values[start:end]
        return out
