"""The viewer's queries: sorted, filtered and paged feature lists, search, explanations,
the SAE summary; checked against numpy on the analysis that was written."""

from __future__ import annotations

import numpy as np
import pytest

from saescope.errors import ConfigError, SaescopeError
from tests.store.store_data import LONDON, make_analysis


@pytest.fixture
def filled(store):
    analysis = make_analysis()
    store.write_analysis(analysis)
    return store, analysis


def expected_order(values: np.ndarray, ids: np.ndarray, descending: bool) -> list[int]:
    """Sort by value, ties by feature id, both in the same direction."""
    order = np.lexsort((ids, values))
    return ids[order[::-1] if descending else order].tolist()


@pytest.mark.parametrize("sort_by", ["density", "max_act", "mean_act", "feature"])
@pytest.mark.parametrize("descending", [True, False])
def test_sorted_pages_follow_the_values(filled, sort_by, descending):
    store, analysis = filled
    d_sae = len(analysis.features.density)
    ids = np.arange(d_sae)
    values = (
        ids
        if sort_by == "feature"
        else np.asarray(getattr(analysis.features, sort_by), dtype=np.float64)
    )
    want = expected_order(values, ids, descending)
    got = []
    for offset in range(0, d_sae, 10):
        page = store.features(
            analysis.sae_id, sort_by=sort_by, descending=descending, offset=offset, limit=10
        )
        assert page["total"] == d_sae
        got += [item["feature"] for item in page["items"]]
    assert got == want


def test_density_filter_and_paging(filled):
    store, analysis = filled
    density = analysis.features.density
    low, high = 1e-4, 1e-2
    ids = np.flatnonzero((density >= low) & (density <= high))
    want = expected_order(analysis.features.max_act.astype(np.float64)[ids], ids, True)
    page = store.features(
        analysis.sae_id, sort_by="max_act", min_density=low, max_density=high, limit=5
    )
    assert page["total"] == len(ids) and 5 < len(ids) < len(density)
    assert [item["feature"] for item in page["items"]] == want[:5]
    rest = store.features(
        analysis.sae_id, sort_by="max_act", min_density=low, max_density=high, offset=5, limit=100
    )
    assert [item["feature"] for item in rest["items"]] == want[5:]


def test_sort_and_filter_by_stored_scores(filled):
    store, analysis = filled
    score = analysis.features.scores["autointerp"]
    entropy = analysis.features.scores["entropy"]
    has = np.flatnonzero(~np.isnan(score) & (entropy >= 1.0) & (analysis.features.density > 0))
    page = store.features(
        analysis.sae_id,
        sort_by="autointerp",
        ranges={"entropy": (1.0, None)},
        min_density=1e-12,
        limit=1000,
    )
    assert page["total"] == len(has)
    assert [item["feature"] for item in page["items"]] == expected_order(score[has], has, True)
    assert page["items"][0]["autointerp"] == score[has].max()


def test_bad_sort_key_names_the_accepted_ones(filled):
    store, analysis = filled
    with pytest.raises(ConfigError, match="autointerp") as err:
        store.features(analysis.sae_id, sort_by="nope")
    assert err.value.field == "sort_by"
    with pytest.raises(ConfigError, match="ranges"):
        store.features(analysis.sae_id, ranges={"nope": (0, 1)})


def test_search_finds_top_tokens_before_contexts(filled):
    store, analysis = filled
    results = store.search("paris")
    assert results[0]["feature"] == 3 and results[0]["field"] == "top_tokens"
    # every other hit really has " Paris" in one of its top contexts
    for r in results[1:]:
        assert r["field"] == "context" and "paris" in r["snippet"].lower()
        page = store.feature(r["sae_id"], r["feature"])
        assert any(
            " Paris" in tokens for tokens in (ex["tokens"] for ex in page["examples"]["top"])
        )
    assert [r["max_act"] for r in results[1:]] == sorted(
        (r["max_act"] for r in results[1:]), reverse=True
    )


def test_search_is_a_case_insensitive_substring_search(filled):
    store, _ = filled
    for query in ("__INIT__", "://", "café", "%", '"', "\\", "日本", "ri", "_"):
        results = store.search(query, limit=5)
        assert results, query
        assert query.lower() in results[0]["snippet"].lower(), query
    assert store.search("zzzz-not-there") == []
    with pytest.raises(ConfigError):
        store.search("   ")


def test_search_over_explanations_and_one_sae(store):
    a = make_analysis("sae-a", seed=0)
    b = make_analysis("sae-b", seed=1, planted={9: LONDON})
    store.write_analysis(a)
    store.write_analysis(b)
    store.set_explanation("sae-b", 20, "Fires on city names like London and Rome")
    results = store.search("london", sae_id="sae-b")
    assert (results[0]["sae_id"], results[0]["feature"], results[0]["field"]) == (
        "sae-b",
        20,
        "explanation",
    )
    assert results[0]["explanation"] == "Fires on city names like London and Rome"
    assert (results[1]["feature"], results[1]["field"]) == (9, "top_tokens")
    assert {r["sae_id"] for r in results} == {"sae-b"}
    assert {r["sae_id"] for r in store.search("london", limit=100)} == {"sae-a", "sae-b"}
    store.set_explanation("sae-b", 20, None)
    assert store.feature("sae-b", 20)["explanation"] is None
    assert store.search("rome") == []


def test_explanations_show_in_pages_lists_and_summary(filled):
    store, analysis = filled
    store.set_explanation(analysis.sae_id, 4, "  closing brackets ")
    assert store.feature(analysis.sae_id, 4)["explanation"] == "closing brackets"
    page = store.features(analysis.sae_id, sort_by="feature", descending=False, offset=4, limit=1)
    assert page["items"][0]["explanation"] == "closing brackets"
    assert store.sae_summary(analysis.sae_id)["n_explained"] == 1
    with pytest.raises(SaescopeError, match="0..63"):
        store.set_explanation(analysis.sae_id, 64, "out of range")


def test_sae_summary_has_info_evals_and_density_histogram(filled):
    store, analysis = filled
    summary = store.sae_summary(analysis.sae_id)
    assert summary["info"] == analysis.sae_info and summary["evals"] == analysis.evals
    assert summary["corpus"] == analysis.corpus and summary["n_tokens"] == analysis.n_tokens
    assert summary["score_names"] == ["autointerp", "entropy"]
    hist = summary["density_histogram"]
    density = analysis.features.density
    assert hist["n_dead"] == 2 and hist["n_features"] == len(density)
    counts, _ = np.histogram(np.log10(density[density > 0]), bins=np.asarray(hist["log10_edges"]))
    assert hist["counts"] == counts.tolist() and sum(hist["counts"]) == len(density) - 2


def test_unknown_sae_and_feature_are_named(filled):
    store, analysis = filled
    with pytest.raises(SaescopeError, match=r"no SAE 'other'.*holds: smollm2"):
        store.feature("other", 0)
    with pytest.raises(SaescopeError, match=r"got 64; .* has features 0\.\.63"):
        store.feature(analysis.sae_id, 64)
