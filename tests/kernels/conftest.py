"""The kernels are built (or loaded from torch's extension cache) before any test calls torch.ops.saescope."""

from __future__ import annotations

import pytest

from saescope import kernels


@pytest.fixture(autouse=True)
def built_kernels() -> None:
    # the project's machines have g++ and ninja: the kernels must be in use, not the fallback
    assert kernels.available()
