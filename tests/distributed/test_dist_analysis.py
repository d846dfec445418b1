"""`saescope analyze` under torchrun with 2 gloo ranks writes the analysis one process writes."""

from __future__ import annotations

import dataclasses

import numpy as np

from saescope.analysis import load_analysis
from saescope.cli import main

N_CONTEXTS = 12
ARGS = [
    "--tokens",
    str(32 * N_CONTEXTS),
    "--context-length",
    "32",
    "--batch-size",
    "4",
    "--top-k",
    "5",
    "--quantile-intervals",
    "3",
    "--per-interval",
    "2",
    "--inactive",
    "2",
    "--window",
    "4,2",
    "--cofiring-tokens",
    "1M",
    "--sae-id",
    "dist-test",
]


def test_two_rank_analysis_equals_one_process(dist_sae_dir, torchrun, tmp_path):
    assert main(["analyze", str(dist_sae_dir), "--out", str(tmp_path / "one.npz"), *ARGS]) == 0
    torchrun(
        ["-m", "saescope", "analyze", str(dist_sae_dir), "--out", "two.npz", *ARGS], cwd=tmp_path
    )
    one, two = load_analysis(tmp_path / "one.npz"), load_analysis(tmp_path / "two.npz")
    assert one.n_tokens == two.n_tokens == N_CONTEXTS * 31  # BOS positions are not analysed
    for f in dataclasses.fields(one.features):
        a, b = getattr(one.features, f.name), getattr(two.features, f.name)
        if f.name == "scores":
            assert a.keys() == b.keys()
            for key in a:
                np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-5, err_msg=key)
        elif a is not None and np.asarray(a).dtype.kind == "f":
            # activations from one thread per rank vs two: matmuls round differently (~1e-6)
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=f.name)
        elif a is not None:
            np.testing.assert_array_equal(a, b, err_msg=f.name)
    # the same top contexts, interval samples and inactive examples, with the same windows and effects
    assert len(one.examples) == len(two.examples) > 0
    assert {e.kind for e in one.examples} == {"top", "quantile", "inactive"}
    for a, b in zip(one.examples, two.examples, strict=True):
        assert_same_example(dataclasses.asdict(a), dataclasses.asdict(b))
    assert one.evals == two.evals
    assert one.features.density.max() > 0 and (one.features.act_hist_counts.sum() > 0)
    # each rank saw only its share: the top examples come from both halves of the contexts
    top_contexts = {e.context_index for e in one.examples if e.kind == "top"}
    assert min(top_contexts) < N_CONTEXTS // 2 <= max(top_contexts)
    assert not list(
        tmp_path.glob(".two.npz.*checkpoint*")
    )  # every rank's checkpoint removed once stored


FLOAT_FIELDS = ("acts", "max_act", "loss_effects", "top_boosted_values", "top_suppressed_values")


def assert_same_example(a: dict, b: dict) -> None:
    """Same feature, kind, rank, place, window and hover tokens; activations and effects to float
    tolerance (torchrun runs each rank on one thread, and matmuls round differently across thread counts)."""
    for key in a:
        if key in FLOAT_FIELDS and a[key] is not None:
            np.testing.assert_allclose(
                np.asarray(a[key], float),
                np.asarray(b[key], float),
                rtol=1e-4,
                atol=1e-4,
                err_msg=key,
            )
        else:
            assert a[key] == b[key], key
