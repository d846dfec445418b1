"""Fixtures for the SAE tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def x() -> torch.Tensor:
    """[32, 16] inputs with an offset, so b_dec and normalisation matter."""
    return torch.randn(32, 16, generator=torch.Generator().manual_seed(1)) * 2 + 0.5
