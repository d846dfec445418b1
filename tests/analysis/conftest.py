"""Fixtures for analysis tests: a real TopK SAE on SmolLM2's layer-3 residual stream (real
activation directions, tests/sae_builders.py), saved to disk."""

from __future__ import annotations

import pytest

from tests.sae_builders import topk_sae_from_activations

HOOK = "blocks.3.hook_resid_post"
D_SAE = 96
K = 8


@pytest.fixture(scope="session")
def sae_dir(smollm2, tmp_path_factory):
    from saescope.sae import save_sae

    out = tmp_path_factory.mktemp("sae") / "topk"
    # not the analysed contexts
    save_sae(topk_sae_from_activations(smollm2, HOOK, D_SAE, K, corpus_seed=1000), out)
    return out
