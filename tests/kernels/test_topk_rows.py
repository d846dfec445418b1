"""The C++ top-k kernel picks exactly what torch.topk picks, on real pre-activations."""

from __future__ import annotations

import pytest
import torch

from saescope.kernels import topk_rows


def reference(pre: torch.Tensor, bias: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    return (pre + bias).topk(k, dim=-1, sorted=False)


def as_sets(values: torch.Tensor, columns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's values and columns in ascending column order (the kernel's order is a heap's)."""
    columns, order = columns.sort(dim=-1)
    return values.gather(1, order), columns


@pytest.mark.parametrize(("width", "k"), [(9216, 32), (9216, 1), (1000, 7), (37, 37), (12, 5)])
def test_same_as_torch_topk_on_real_pre_activations(layer6_acts, width, k):
    g = torch.Generator().manual_seed(width + k)
    x = layer6_acts[:512]
    pre = x @ torch.randn(x.shape[1], width, generator=g) / x.shape[1] ** 0.5
    bias = torch.randn(width, generator=g)
    want_values, want_columns = as_sets(*reference(pre, bias, k))
    got_values, got_columns = as_sets(*torch.ops.saescope.topk_rows(pre, bias, k))
    assert torch.equal(got_columns, want_columns)
    assert torch.equal(got_values, want_values)  # pre + bias rounds the same in both


@pytest.mark.parametrize("width", [100, 5000])  # fewer blocks than k, and the block-bound path
def test_ties_give_k_distinct_columns(width):
    pre = torch.zeros(3, width)
    values, columns = torch.ops.saescope.topk_rows(pre, torch.zeros(width), 10)
    assert torch.equal(values, torch.zeros(3, 10))
    assert all(len(set(row.tolist())) == 10 for row in columns)


def test_wrapper_does_not_touch_pre_when_the_kernel_runs():
    pre = torch.randn(4, 64)
    kept = pre.clone()
    topk_rows(pre, torch.ones(64), 3)
    assert torch.equal(pre, kept)


def test_other_dtypes_fall_back_to_torch():
    pre = torch.randn(8, 50, dtype=torch.float64)
    bias = torch.randn(50, dtype=torch.float64)
    want = as_sets(*reference(pre, bias, 4))
    got = as_sets(*topk_rows(pre.clone(), bias, 4))
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


def test_bad_k_is_refused_with_the_range():
    with pytest.raises(RuntimeError, match=r"k must be in \[1, 16\], got 17"):
        torch.ops.saescope.topk_rows(torch.zeros(2, 16), torch.zeros(16), 17)


def test_nan_is_never_picked_and_a_row_of_nans_is_refused():
    pre = torch.arange(40.0).repeat(2, 1)
    pre[0, 39] = torch.nan
    values, columns = torch.ops.saescope.topk_rows(pre[:1], torch.zeros(40), 3)
    assert sorted(columns[0].tolist()) == [36, 37, 38]
    with pytest.raises(RuntimeError, match="fewer than k = 3 values that are not NaN"):
        torch.ops.saescope.topk_rows(torch.full((2, 40), torch.nan), torch.zeros(40), 3)
