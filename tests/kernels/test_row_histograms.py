"""The C++ row-histogram kernel gives torch's counts and extremes, on SmolLM2's real logit effects."""

from __future__ import annotations

import pytest
import torch

from saescope.analysis.directions import row_histograms
from saescope.kernels import row_histograms as kernel_histograms


def reference(values: torch.Tensor, n_bins: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    lo, hi = values.min(dim=1).values, values.max(dim=1).values
    return row_histograms(values, lo, (hi - lo).clamp_min(1e-12), n_bins), lo, hi


@pytest.mark.parametrize("n_bins", [40, 7, 1])
def test_same_counts_as_torch_on_real_logit_effects(smollm2, n_bins):
    """Logit effects of random residual directions through SmolLM2's final norm and unembedding."""
    directions = torch.randn(64, smollm2.d_model, generator=torch.Generator().manual_seed(n_bins))
    effects = smollm2.direction_logits(directions).float()
    got, want = kernel_histograms(effects, n_bins), reference(effects, n_bins)
    for g, w in zip(got, want, strict=True):
        assert torch.equal(g, w)
    assert int(got[0].sum()) == effects.numel()


def test_constant_and_non_finite_rows_as_torch_counts_them():
    rows = torch.tensor(
        [
            [2.0, 2.0, 2.0, 2.0],  # no spread: width clamped to 1e-12, everything in bin 0
            [0.0, 1.0, 2.0, 3.0],  # the maximum lands in the last bin
            [0.0, float("nan"), 1.0, 2.0],
            [0.0, float("inf"), 1.0, 2.0],
            [float("-inf"), 0.0, 1.0, 2.0],
        ]
    )
    counts, lo, hi = kernel_histograms(rows, 3)
    want_counts, want_lo, want_hi = reference(rows, 3)
    assert torch.equal(counts, want_counts)
    torch.testing.assert_close(lo, want_lo, equal_nan=True)
    torch.testing.assert_close(hi, want_hi, equal_nan=True)
    assert counts[2:, 0].tolist() == [4, 4, 4]
