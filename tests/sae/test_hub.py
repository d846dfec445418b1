"""load_sae("hf:...") through huggingface_hub, offline, on a hub cache this test builds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from saescope.errors import SaescopeError
from saescope.sae import load_sae
from tests.sae.sae_testing import OUR_FIXTURES, SHARED_FIXTURES

REVISION = "0123456789abcdef0123456789abcdef01234567"


def build_hub_cache(cache: Path, repo_id: str, files: dict[str, Path]) -> Path:
    """huggingface_hub's layout: models--ORG--NAME/{refs/main, snapshots/<rev>/...}, blobs symlinked."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / REVISION
    for target, source in files.items():
        blob = repo / "blobs" / f"{abs(hash((target, source)))}"
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, blob)
        link = snapshot / target
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(blob)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(REVISION)
    return snapshot


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "hub"
    saelens = SHARED_FIXTURES / "saelens" / "topk"
    layers = OUR_FIXTURES / "sparsify" / "layers"
    files = {f"blocks.3/{name}": saelens / name for name in ("cfg.json", "sae_weights.safetensors")}
    for layer in ("layers.2", "layers.10"):
        files |= {
            f"{layer}/{name}": layers / layer / name for name in ("cfg.json", "sae.safetensors")
        }
    build_hub_cache(cache, "saescope-test/mixed-saes", files)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_load_saelens_from_hub_cache(hub, x):
    sae = load_sae("hf:saescope-test/mixed-saes/blocks.3")
    local = load_sae(SHARED_FIXTURES / "saelens" / "topk")
    assert (
        sae.cfg.source_format == "saelens"
        and sae.cfg.source_path == "hf:saescope-test/mixed-saes/blocks.3"
    )
    assert torch.equal(sae(x), local(x))


def test_load_sparsify_layer_from_hub_cache(hub, x):
    sae = load_sae(f"hf:saescope-test/mixed-saes/layers.10@{REVISION}")
    assert sae.cfg.source_format == "sparsify" and sae.cfg.hook_name == "layers.10"
    local = load_sae(OUR_FIXTURES / "sparsify" / "layers" / "layers.10")
    assert torch.equal(sae(x), local(x))


def test_hub_errors_are_clear(hub):
    with pytest.raises(SaescopeError, match="not in the local hub cache.*HF_HUB_OFFLINE"):
        load_sae("hf:saescope-test/not-cached/blocks.3")
    with pytest.raises(SaescopeError, match="has no 'blocks.9'"):
        load_sae("hf:saescope-test/mixed-saes/blocks.9")
    with pytest.raises(SaescopeError, match="expected hf:ORG/NAME"):
        load_sae("hf:just-a-name")
