"""Where the foreign-format fixtures are, which path each loads from, and comparing outputs."""

from __future__ import annotations

from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"
FORMATS = ("dictionary_learning", "lm_saes", "openai", "gemma_scope")


def load_path(folder: Path) -> Path:
    """What a user passes to load_sae for the fixture in `folder` (which holds reference.safetensors)."""
    if folder.parent.name == "openai":
        return next(folder.rglob("*.pt"))
    if folder.parent.name == "gemma_scope":
        return next(folder.rglob("params.npz")).parent
    return folder


def fixture_folders(fmt: str) -> list[Path]:
    """Every fixture of a format: folders holding reference.safetensors."""
    return sorted(p.parent for p in (FIXTURES / fmt).glob("*/reference.safetensors"))


def cases() -> list[tuple[str, Path]]:
    return [(fmt, folder) for fmt in FORMATS for folder in fixture_folders(fmt)]


def case_id(case: tuple[str, Path]) -> str:
    return f"{case[0]}/{case[1].name}"


def other_libraries_fixtures() -> list[Path]:
    """SAEs of the formats other engineers read (SAELens folders, legacy .pt files, sparsify), ours and shared."""
    found = []
    for root in (FIXTURES, SHARED_FIXTURES):
        for lib in ("saelens", "saelens_legacy", "sparsify"):
            found += sorted(p.parent for p in (root / lib).rglob("cfg.json"))
            found += sorted((root / lib).rglob("*.pt"))
    return found


def assert_close(got: torch.Tensor, want: torch.Tensor, what: str) -> None:
    """Equal to float32 tolerance, relative to the reference's scale."""
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    scale = max(1.0, float(want.abs().max()))
    err = float((got.detach().float() - want.float()).abs().max())
    assert err <= 2e-5 * scale, f"{what}: max abs error {err:.3g} (scale {scale:.3g})"
