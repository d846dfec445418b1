"""Each foreign fixture is detected as its own format and only that; other formats' folders are left alone."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from saescope.sae.formats import available_formats, detect_format, format_module
from tests.sae_formats.foreign_fixtures import (
    FORMATS,
    case_id,
    cases,
    load_path,
    other_libraries_fixtures,
)

CASES = cases()


def test_our_readers_are_registered():
    assert set(FORMATS) <= set(available_formats())


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_detected_as_its_own_format_only(case: tuple[str, Path]):
    fmt, folder = case
    path = load_path(folder)
    claimed = [name for name in available_formats() if format_module(name).detect(path)]
    assert claimed == [fmt]
    assert detect_format(path) == fmt


WEIGHT_FILES = {
    "dictionary_learning": ("ae.pt",),
    "lm_saes": ("sae_weights.*", "checkpoints/final.*"),
    "gemma_scope": ("**/params.npz",),
    "openai": ("**/*.pt",),
}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_weights_file_detected_too(case: tuple[str, Path]):
    """Passing the weights file instead of its folder picks the same format."""
    fmt, folder = case
    weights = next(path for pattern in WEIGHT_FILES[fmt] for path in folder.glob(pattern))
    assert detect_format(weights) == fmt


@pytest.mark.parametrize(
    "path", other_libraries_fixtures(), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_other_formats_not_claimed(path: Path):
    for fmt in FORMATS:
        assert not importlib.import_module(f"saescope.sae.formats.{fmt}").detect(path), fmt


def test_unrelated_files_not_claimed(tmp_path: Path):
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')  # a Hugging Face model folder
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "weights.pt").write_bytes(b"not a pickle")
    for path in (tmp_path, tmp_path / "weights.pt", tmp_path / "config.json"):
        for fmt in FORMATS:
            assert not format_module(fmt).detect(path), (fmt, path.name)
