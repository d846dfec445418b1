"""Every field of an SAEAnalysis comes back from the store as it went in, on both backends."""

from __future__ import annotations

import numpy as np

from saescope.analysis.results import EXAMPLE_KINDS
from saescope.store import open_store
from tests.store.store_data import LONDON, PARIS, VOCAB, assert_same_analysis, make_analysis


def test_every_field_round_trips(store):
    analysis = make_analysis(neurons=True)
    store.write_analysis(analysis)
    assert_same_analysis(store.load_analysis(analysis.sae_id), analysis)


def test_round_trip_without_vocab_or_optional_arrays(store):
    analysis = make_analysis(vocab=None, n_top=2, n_quantile=0, n_inactive=0)
    for ex in analysis.examples:
        ex.top_boosted = ex.top_boosted_values = ex.top_suppressed = ex.top_suppressed_values = None
        ex.loss_effects = None
    store.write_analysis(analysis)
    assert_same_analysis(store.load_analysis(analysis.sae_id), analysis)
    page = store.feature(analysis.sae_id, 3)
    assert page["examples"]["top"][0]["tokens"][0].startswith(
        "<"
    )  # ids shown as <id> without a vocab


def test_feature_page_has_everything_a_page_shows(store):
    analysis = make_analysis(neurons=True)
    store.write_analysis(analysis)
    tables, f = analysis.features, 3
    page = store.feature(analysis.sae_id, f)
    assert page["feature"] == f
    assert page["density"] == tables.density[f]
    assert page["max_act"] == float(tables.max_act[f])
    assert page["scores"] == {name: v[f] for name, v in tables.scores.items() if not np.isnan(v[f])}
    assert page["act_hist"]["counts"] == tables.act_hist_counts[f].tolist()
    assert page["act_hist"]["bin_edges"][-1] == float(tables.max_act[f])
    assert page["quantiles"]["values"] == tables.quantile_values[f].tolist()
    top = page["logits"]["top"]
    assert [t["token_id"] for t in top] == tables.logit_top_ids[f].tolist()
    assert [t["token"] for t in top] == [VOCAB[i] for i in tables.logit_top_ids[f]]
    assert [n["feature"] for n in page["neighbours"]] == tables.neighbour_ids[f].tolist()
    assert [n["corr"] for n in page["cofiring"]] == tables.cofiring_corr[f].tolist()
    assert [n["neuron"] for n in page["neurons"]] == tables.neuron_ids[f].tolist()
    want = {
        kind: sorted(
            (ex for ex in analysis.examples if ex.feature == f and ex.kind == kind),
            key=lambda ex: (ex.interval, ex.rank),
        )
        for kind in EXAMPLE_KINDS
    }
    for kind in EXAMPLE_KINDS:
        got = page["examples"][kind]
        assert [ex["rank"] for ex in got] == [ex.rank for ex in want[kind]]
        for g, w in zip(got, want[kind], strict=True):
            assert g["tokens"] == [VOCAB[i] for i in w.token_ids]
            assert g["acts"] == w.acts and g["center"] == w.center and g["max_act"] == w.max_act
            assert g["top_boosted"] == w.top_boosted
            if w.top_boosted is not None:
                assert g["top_boosted_tokens"][0] == [VOCAB[i] for i in w.top_boosted[0]]
    centre = page["examples"]["top"][0]
    assert centre["tokens"][centre["center"]] == VOCAB[PARIS]


def test_several_saes_share_a_store_and_a_vocabulary(store):
    a = make_analysis("smollm2/l6/topk", d_sae=64, seed=0)
    b = make_analysis("smollm2/l9/relu", d_sae=48, seed=1, planted={2: LONDON})
    store.write_analysis(a)
    store.write_analysis(b)
    assert [s["sae_id"] for s in store.list_saes()] == ["smollm2/l6/topk", "smollm2/l9/relu"]
    assert_same_analysis(store.load_analysis(a.sae_id), a)
    assert_same_analysis(store.load_analysis(b.sae_id), b)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM vocabs").scalar() == 1
    store.delete_sae(a.sae_id)
    assert [s["sae_id"] for s in store.list_saes()] == [b.sae_id]
    assert_same_analysis(store.load_analysis(b.sae_id), b)


def test_rewriting_an_sae_replaces_it_and_keeps_explanations(store):
    first = make_analysis(seed=0)
    store.write_analysis(first)
    store.set_explanation(first.sae_id, 3, "the word Paris")
    second = make_analysis(seed=5)
    store.write_analysis(second)
    assert_same_analysis(store.load_analysis(second.sae_id), second)
    assert store.feature(second.sae_id, 3)["explanation"] == "the word Paris"
    assert store.search("word paris")[0]["feature"] == 3


def test_store_reopens_with_its_data(store_url):
    analysis = make_analysis()
    with open_store(store_url) as store:
        store.write_analysis(analysis)
    with open_store(store_url, create=False) as store:
        assert_same_analysis(store.load_analysis(analysis.sae_id), analysis)


def test_quantile_ranks_numbered_within_each_interval(store):
    """The analysis pass numbers quantile examples within their interval: stored as they come."""
    analysis = make_analysis(n_quantile=6)
    counters: dict[tuple[int, int], int] = {}
    for ex in analysis.examples:
        if ex.kind == "quantile":
            ex.rank = counters.get((ex.feature, ex.interval), 0)
            counters[(ex.feature, ex.interval)] = ex.rank + 1
    store.write_analysis(analysis)
    assert_same_analysis(store.load_analysis(analysis.sae_id), analysis)
    quantile = store.feature(analysis.sae_id, 3)["examples"]["quantile"]
    assert [(ex["interval"], ex["rank"]) for ex in quantile] == [
        (0, 0),
        (0, 1),
        (0, 2),
        (1, 0),
        (1, 1),
        (1, 2),
    ]
