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
    harvest(HarvestConfig(out=str(out), hooks=HOOKS, corpus=CORPUS, n_tokens=32 * N_CONTEXTS, shard_mb=0.5),
            model=smollm2, progress=False)
    return out


def rows(batches: list[dict[str, torch.Tensor]], hook: str) -> torch.Tensor:
    return torch.cat([b[hook] for b in batches])


def test_each_window_is_a_permutation_of_its_tokens_aligned_across_hooks(cache_dir):
    plain = list(ActivationStore.from_cache(cache_dir, normalize=False, batch_size=31 * 8, buffer_tokens=31 * 8 * 3))
    assert all(b[HOOKS[0]].shape == (31 * 8, 576) for b in plain)
    unshuffled = list(ActivationStore.from_cache(cache_dir, normalize=False, batch_size=31, buffer_tokens=31))
    # with one-context windows and batches the order is the cache order, BOS dropped
    ordered = rows(unshuffled, HOOKS[0])
    assert ordered.shape[0] == N_CONTEXTS * 31
    shuffled = rows(plain, HOOKS[0])
    assert not torch.equal(shuffled, ordered[: shuffled.shape[0]])
    assert torch.equal(shuffled.sort(dim=0).values, ordered[: shuffled.shape[0]].sort(dim=0).values)
    # the same permutation for both hooks: pair rows and compare as sets of pairs
    pair = lambda bs: torch.cat([rows(bs, HOOKS[0])[:, :4], rows(bs, HOOKS[1])[:, :4]], dim=1)  # noqa: E731
    a, b = pair(plain), pair(unshuffled)[: shuffled.shape[0]]
    assert torch.equal(a[a[:, 0].argsort()], b[b[:, 0].argsort()])


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
    kwargs = dict(batch_size=40, buffer_tokens=31 * 6, seed=3, normalize=False)
    cached = list(ActivationStore.from_cache(cache_dir, **kwargs))
    live = ActivationStore.from_model(smollm2, CORPUS, HOOKS, batch_contexts=4, **kwargs)
    for x, y in zip(cached, live, strict=False):
        torch.testing.assert_close(x[HOOKS[0]], y[HOOKS[0]], rtol=1e-4, atol=1e-4)


def test_bad_sizes(cache_dir):
    with pytest.raises(ConfigError, match="buffer_tokens"):
        ActivationStore.from_cache(cache_dir, batch_size=4096, buffer_tokens=100)
