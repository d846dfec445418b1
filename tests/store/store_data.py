"""Realistic SAEAnalysis objects for the store tests, built from the contract in
saescope.analysis.results: every field filled, float32 activations, dead features,
NaN scores, and planted tokens so search has something known to find; and the check that an
analysis read back from a store is the one written."""

from __future__ import annotations

import json

import numpy as np

from saescope.analysis.results import EXAMPLE_KINDS, Example, FeatureTables, SAEAnalysis
from saescope.store import rows
from saescope.store.rows import FEATURE_ARRAYS

WORDS = [
    " the",
    " cat",
    " sat",
    " on",
    " mat",
    "def",
    " __init__",
    "(self",
    "):",
    " return",
    " http",
    "://",
    "www",
    ".org",
    " import",
    " numpy",
    " as",
    " np",
    "\n",
    "    ",
    " Paris",
    " London",
    " Berlin",
    " café",
    " naïve",
    "日本",
    " 100",
    "%",
    '"',
    "\\",
]
VOCAB = ["<|endoftext|>", *WORDS, *[f" w{i}" for i in range(200)]]
PARIS, LONDON = VOCAB.index(" Paris"), VOCAB.index(" London")


def f32(values) -> list[float]:
    """Python floats that are exactly float32, as the analysis pass hands them over."""
    return np.asarray(values, dtype=np.float32).tolist()


def make_analysis(
    sae_id: str = "smollm2/blocks.6.hook_resid_post/topk-64",
    d_sae: int = 64,
    n_top: int = 5,
    n_quantile: int = 4,
    n_inactive: int = 2,
    window: int = 12,
    seed: int = 0,
    neurons: bool = False,
    planted: dict[int, int] | None = None,
    vocab: list[str] | None = VOCAB,
) -> SAEAnalysis:
    """An analysis of a d_sae-feature SAE; `planted` maps feature -> token id its top
    examples are centred on (default: feature 3 fires on " Paris", 5 on " London")."""
    rng = np.random.default_rng(seed)
    planted = {3: PARIS, 5: LONDON} if planted is None else planted
    density = 10 ** rng.uniform(-5, -0.5, d_sae)
    density[[1, 7]] = 0.0  # dead features
    max_act = rng.uniform(1, 30, d_sae) * (density > 0)
    mean_act = max_act * rng.uniform(0.1, 0.5, d_sae)
    n_bins, n_logits, n_near = 16, 6, 4
    levels = np.array([0.5, 0.9, 0.99, 0.999], dtype=np.float32)
    tables = FeatureTables(
        density=density,
        max_act=max_act.astype(np.float32),
        mean_act=mean_act.astype(np.float32),
        act_hist_counts=rng.integers(0, 1000, (d_sae, n_bins)),
        quantile_levels=levels,
        quantile_values=np.sort(rng.uniform(0, 1, (d_sae, len(levels))), axis=1).astype(np.float32)
        * max_act[:, None],
        logit_top_ids=rng.integers(0, len(VOCAB), (d_sae, n_logits)),
        logit_top_values=-np.sort(-rng.normal(1, 0.3, (d_sae, n_logits))).astype(np.float32),
        logit_bottom_ids=rng.integers(0, len(VOCAB), (d_sae, n_logits)),
        logit_bottom_values=np.sort(rng.normal(-1, 0.3, (d_sae, n_logits))).astype(np.float32),
        logit_hist_counts=rng.integers(0, 500, (d_sae, n_bins)),
        logit_hist_range=np.sort(rng.normal(0, 1, (d_sae, 2)), axis=1).astype(np.float32),
        neighbour_ids=rng.integers(0, d_sae, (d_sae, n_near)),
        neighbour_cos=rng.uniform(0, 1, (d_sae, n_near)).astype(np.float32),
        cofiring_ids=rng.integers(0, d_sae, (d_sae, n_near)),
        cofiring_corr=rng.uniform(-1, 1, (d_sae, n_near)).astype(np.float32),
        neuron_ids=rng.integers(0, 1536, (d_sae, 3)) if neurons else None,
        neuron_weights=rng.normal(0, 1, (d_sae, 3)).astype(np.float32) if neurons else None,
        scores={
            "autointerp": np.where(rng.uniform(size=d_sae) < 0.2, np.nan, rng.uniform(0, 1, d_sae)),
            "entropy": rng.uniform(0, 5, d_sae),
        },
    )
    examples = []
    for f in np.flatnonzero(density > 0).tolist():
        examples += _feature_examples(
            rng, f, float(max_act[f]), n_top, n_quantile, n_inactive, window, planted.get(f)
        )
    return SAEAnalysis(
        sae_id=sae_id,
        sae_info={
            "architecture": "topk",
            "d_in": 576,
            "d_sae": d_sae,
            "k": 8,
            "hook_point": "blocks.6.hook_resid_post",
            "model": "smollm2",
            "source": "runs/demo/sae",
            "cfg": {"dtype": "float32", "nested": [1, 2]},
        },
        n_tokens=1_000_000 + seed,
        corpus={"source": "builtin", "kind": "builtin", "context_length": 128, "n_contexts": 7812},
        features=tables,
        examples=examples,
        evals={"l0": 8.0, "fvu": 0.21, "ce_loss_recovered": 0.93, "kl": 0.12},
        vocab=vocab,
    )


def _feature_examples(
    rng, f, max_act, n_top, n_quantile, n_inactive, window, planted
) -> list[Example]:
    out = []
    top_acts = np.sort(rng.uniform(0.5, 1, n_top))[::-1] * max_act
    for rank, peak in enumerate(top_acts):
        out.append(_example(rng, f, "top", rank, -1, peak, window, planted, logits=True))
    for rank in range(n_quantile):
        interval = rank % 2
        peak = max_act * (0.2 + 0.3 * interval) * rng.uniform(0.9, 1)
        out.append(_example(rng, f, "quantile", rank, interval, peak, window, None, logits=False))
    for rank in range(n_inactive):
        out.append(_example(rng, f, "inactive", rank, -1, 0.0, window, None, logits=False))
    return out


def _example(rng, f, kind, rank, interval, peak, window, planted, logits) -> Example:
    center = int(rng.integers(0, window))
    tokens = rng.integers(1, len(VOCAB), window)
    # only planted features fire on the city names (they may still appear in contexts)
    tokens[center] = planted if planted is not None else VOCAB.index(" w0") + center
    acts = (
        np.zeros(window, dtype=np.float32)
        if peak == 0
        else (rng.uniform(0, 0.4, window) * peak * (rng.uniform(size=window) < 0.3)).astype(
            np.float32
        )
    )
    acts[center] = peak
    ex = Example(
        feature=f,
        kind=kind,
        rank=rank,
        interval=interval,
        token_ids=tokens.tolist(),
        acts=acts.tolist(),
        center=center,
        max_act=float(acts[center]),
        context_index=int(rng.integers(0, 7812)),
        position=int(rng.integers(0, 128)),
    )
    if logits:
        ex.loss_effects = f32(rng.normal(0, 0.1, window))
        ex.top_boosted = rng.integers(0, len(VOCAB), (window, 3)).tolist()
        ex.top_boosted_values = f32(rng.uniform(0, 1, (window, 3)))
        ex.top_suppressed = rng.integers(0, len(VOCAB), (window, 3)).tolist()
        ex.top_suppressed_values = f32(rng.uniform(-1, 0, (window, 3)))
    return ex


def as_json(obj):
    """Metadata dicts are stored as JSON: tuples come back as lists, numpy scalars as numbers."""
    return json.loads(rows._json(obj))


def assert_same_analysis(got: SAEAnalysis, want: SAEAnalysis) -> None:
    """Every field of `got` (read back from a store) equals `want`'s (written), metadata as JSON."""
    for name in ("sae_id", "n_tokens", "vocab"):
        assert getattr(got, name) == getattr(want, name), name
    for name in ("sae_info", "corpus", "evals"):
        assert getattr(got, name) == as_json(getattr(want, name)), name
    for name in ("density", "max_act", "mean_act", "quantile_levels"):
        np.testing.assert_array_equal(
            getattr(got.features, name), getattr(want.features, name), err_msg=name
        )
    for name in FEATURE_ARRAYS:
        g, w = getattr(got.features, name), getattr(want.features, name)
        if w is None:
            assert g is None, name
            continue
        assert g.dtype == w.dtype, name
        np.testing.assert_array_equal(g, w, err_msg=name)
    assert got.features.scores.keys() == want.features.scores.keys()
    for name, values in want.features.scores.items():
        np.testing.assert_array_equal(got.features.scores[name], values, err_msg=name)
    key = lambda ex: (ex.feature, EXAMPLE_KINDS.index(ex.kind), ex.interval, ex.rank)  # noqa: E731
    assert sorted(got.examples, key=key) == sorted(want.examples, key=key)
