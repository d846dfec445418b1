"""The training store: shuffled, normalised batches from the cache or live from the model."""

from __future__ import annotations

import math

import pytest
import torch

from saescope.activations import ActivationStore, HarvestConfig, harvest
from saescope.corpus import CorpusConfig
from saescope.errors import ConfigError

HOOKS = ["blocks.1.hook_resid_post", "blocks.1.hook_mlp_out"]
CORPUS = CorpusConfig(context_length=32)
N_CONTEXTS = 24


@pytest.fixture(scope="module")
def cache_dir(smollm2, tmp_path_factory):
    out = tmp_path_factory.mktemp("store") / "cache"
    harvest(
        HarvestConfig(
            out=str(out), hooks=HOOKS, corpus=CORPUS, n_tokens=32 * N_CONTEXTS, shard_mb=0.5
        ),
        model=smollm2,
        progress=False,
    )
    return out


def rows(batches: list[dict[str, torch.Tensor]], hook: str) -> torch.Tensor:
    return torch.cat([b[hook] for b in batches])


def test_each_window_is_a_permutation_of_its_tokens_aligned_across_hooks(cache_dir):
    # windows of 8 contexts = 8 * 31 tokens without BOS = one batch each
    shuffled = list(
        ActivationStore.from_cache(
            cache_dir, normalize=False, batch_size=31 * 8, buffer_tokens=32 * 8
        )
    )
    assert len(shuffled) == N_CONTEXTS // 8
    assert all(b[h].shape == (31 * 8, 576) for b in shuffled for h in HOOKS)
    # with one-context windows and batches the order is the cache order, BOS dropped
    ordered = list(
        ActivationStore.from_cache(cache_dir, normalize=False, batch_size=31, buffer_tokens=32)
    )
    assert len(ordered) == N_CONTEXTS
    for w, batch in enumerate(shuffled):
        window = {h: rows(ordered[8 * w : 8 * (w + 1)], h) for h in HOOKS}
        assert not torch.equal(batch[HOOKS[0]], window[HOOKS[0]])
        # a permutation of the window's tokens, the same for both hooks: compare the multisets of
        # (hook 0 row, hook 1 row) pairs (rows repeat: identical first tokens give identical acts)
        assert torch.equal(multiset(batch), multiset(window))


def multiset(acts: dict[str, torch.Tensor]) -> torch.Tensor:
    """The distinct (hook 0 row, hook 1 row) pairs, sorted, each with its count."""
    paired = torch.cat([acts[h] for h in HOOKS], dim=1)
    distinct, counts = torch.unique(paired, dim=0, return_counts=True)
    return torch.cat([distinct, counts[:, None].float()], dim=1)


def test_normalisation_scales_mean_norm_to_sqrt_d(cache_dir):
    batches = list(ActivationStore.from_cache(cache_dir, batch_size=64, buffer_tokens=31 * 24))
    for hook in HOOKS:
        mean_norm = rows(batches, hook).norm(dim=-1).mean().item()
        assert mean_norm == pytest.approx(math.sqrt(576), rel=0.05)


def test_same_seed_same_batches_and_exact_resume(cache_dir):
    kwargs = dict(batch_size=50, buffer_tokens=31 * 5, seed=7)
    first = list(ActivationStore.from_cache(cache_dir, **kwargs))
    again = list(ActivationStore.from_cache(cache_dir, **kwargs))
    other = list(ActivationStore.from_cache(cache_dir, **{**kwargs, "seed": 8}))
    assert all(torch.equal(x[HOOKS[0]], y[HOOKS[0]]) for x, y in zip(first, again, strict=True))
    assert not torch.equal(first[0][HOOKS[0]], other[0][HOOKS[0]])

    store = ActivationStore.from_cache(cache_dir, **kwargs)
    it = iter(store)
    for _ in range(5):
        next(it)
    state = store.state_dict()
    resumed = ActivationStore.from_cache(cache_dir, **kwargs)
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert len(rest) == len(first) - 5
    assert all(torch.equal(x[HOOKS[1]], y[HOOKS[1]]) for x, y in zip(first[5:], rest, strict=True))


def test_live_store_gives_the_same_batches_as_the_cache(smollm2, cache_dir):
    kwargs = dict(batch_size=40, buffer_tokens=32 * 5, seed=3, normalize=False)
    cached = list(ActivationStore.from_cache(cache_dir, **kwargs))
    live = ActivationStore.from_model(smollm2, CORPUS, HOOKS, batch_contexts=4, **kwargs)
    # the cache ends after 24 contexts, so only its full windows of 5 contexts compare
    full_window_batches = (N_CONTEXTS // 5) * (5 * 31 // 40)
    assert len(cached) > full_window_batches
    for x, y in zip(cached[:full_window_batches], live, strict=False):
        for h in HOOKS:
            torch.testing.assert_close(x[h], y[h], rtol=1e-4, atol=1e-4)


def test_bad_sizes(cache_dir):
    with pytest.raises(ConfigError, match="buffer_tokens"):
        ActivationStore.from_cache(cache_dir, batch_size=4096, buffer_tokens=100)
