"""Where the foreign-format fixtures are, which path each loads from, and comparing outputs."""

from __future__ import annotations

from pathlib import Path

import torch

from tests import checks
from tests.paths import OUR_FIXTURES as FIXTURES
from tests.paths import SHARED_FIXTURES

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
    """Equal to float32 tolerance (twice the SAE tests': the foreign files hold other layouts and
    dtypes), relative to the reference's scale."""
    checks.assert_close(got, want, what, tol=2e-5)
