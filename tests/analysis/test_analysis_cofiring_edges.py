"""Co-firing correlations where they are undefined: a dead feature and one constant over every token
have no variance, so no correlated features; nothing outside [-1, 1], no overflow in the cast."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from saescope.analysis.accumulators import FeatureAccumulators
from saescope.analysis.tables import cofiring


def test_undefined_correlations_are_no_picks():
    n = 10
    acc = FeatureAccumulators(d_sae=4, n_exact_top=2, per_bucket=1, cofiring_stride=1, seed=0)
    first = torch.arange(5)
    everywhere = torch.arange(n)
    # 0 and 1 rise together on tokens 0..4; 2 is dead; 3 is 0.1 on every token (constant)
    features = torch.cat([torch.zeros(5), torch.ones(5), torch.full((n,), 3.0)]).long()
    tokens = torch.cat([first, first, everywhere])
    values = torch.cat([first + 1.0, 2 * (first + 1.0), torch.full((n,), 0.1)])
    acc.update(features, tokens, values, seen=everywhere)
    with warnings.catch_warnings():
        # the float64 -> float32 cast overflowed here before
        warnings.simplefilter("error", RuntimeWarning)
        ids, corr = cofiring(acc, 3)
    assert np.all(np.abs(corr) <= 1)
    assert ids[0].tolist() == [1, -1, -1] and corr[0, 0] == pytest.approx(1.0)
    assert ids[1].tolist() == [0, -1, -1]
    assert ids[2].tolist() == [-1, -1, -1] and ids[3].tolist() == [-1, -1, -1]
    assert np.all(corr[2:] == 0)
