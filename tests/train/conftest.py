"""Fixtures for training tests: real SmolLM2 activations at layer 6, harvested once per session."""

from __future__ import annotations

import pytest

HOOK = "blocks.6.hook_resid_post"


@pytest.fixture(scope="session")
def layer6_cache(smollm2, tmp_path_factory):
    """A harvested activation cache (shards of 64 contexts, so several shards): 20,480 tokens of blocks.6.hook_resid_post from the built-in corpus."""
    from saescope.activations import HarvestConfig, harvest
    from saescope.corpus import CorpusConfig

    out = tmp_path_factory.mktemp("acts") / "layer6"
    cfg = HarvestConfig(
        out=str(out),
        hooks=[HOOK],
        corpus=CorpusConfig(context_length=128),
        n_tokens=20_480,
        batch_size=16,
    )
    harvest(cfg, model=smollm2, progress=False)
    return out


@pytest.fixture(scope="session")
def layer6_acts(layer6_cache):
    """The first 4,096 normalised activations of the cache: [4096, 576] float32."""
    from saescope.activations import ActivationStore

    store = ActivationStore.from_cache(layer6_cache, batch_size=4096, buffer_tokens=8192)
    return next(iter(store))[HOOK]
