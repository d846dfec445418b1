"""Assertions shared by several test folders."""

from __future__ import annotations

import torch


def assert_close(got: torch.Tensor, want: torch.Tensor, what: str, tol: float = 1e-5) -> None:
    """Equal to float tolerance (`tol`), relative to the reference's scale."""
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    scale = max(1.0, float(want.detach().abs().max())) if want.numel() else 1.0
    err = float((got.detach().float() - want.detach().float()).abs().max()) if want.numel() else 0.0
    assert err <= tol * scale, f"{what}: max abs error {err:.3g} (scale {scale:.3g})"
