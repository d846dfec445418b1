"""Helpers for the SAE tests: where the fixtures are, comparing outputs, random SAEs of every architecture."""

from __future__ import annotations

from pathlib import Path

import torch

from saescope.sae import SAEConfig, build_sae
from tests.checks import assert_close
from tests.paths import OUR_FIXTURES, SHARED_FIXTURES

__all__ = [
    "OUR_FIXTURES",
    "SHARED_FIXTURES",
    "assert_close",
    "fixture_id",
    "random_sae",
    "reference_folders",
]


def reference_folders(library: str) -> list[Path]:
    """Every folder holding a reference.safetensors for `library`, in ours and in shared/."""
    folders = []
    for root in (OUR_FIXTURES / library, SHARED_FIXTURES / library):
        if root.is_dir():
            folders += sorted(p.parent for p in root.rglob("reference.safetensors"))
    return folders


def fixture_id(folder: Path) -> str:
    base = "shared" if SHARED_FIXTURES in folder.parents else "ours"
    return f"{base}:{folder.parent.name}/{folder.name}"


def random_sae(
    architecture: str, d_in: int = 16, d_sae: int = 64, seed: int = 0, **cfg_kwargs
) -> torch.nn.Module:
    """An SAE of any architecture with seeded random weights (thresholds small and positive)."""
    defaults = {"k": 5} if "topk" in architecture else {}
    if architecture == "matryoshka_batchtopk":
        defaults["matryoshka_widths"] = [d_sae // 4, d_sae // 2, d_sae]
    sae = build_sae(
        SAEConfig(architecture=architecture, d_in=d_in, d_sae=d_sae, **{**defaults, **cfg_kwargs})
    )
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sae.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
            if name == "threshold":
                p.copy_(torch.rand(p.shape, generator=g) * 0.2)
            if name == "W_dec":
                p.mul_(torch.rand(p.shape[0], 1, generator=g) + 0.5)
        if "threshold" in dict(sae.named_buffers()):
            sae.threshold.fill_(0.2)
    return sae.eval()
