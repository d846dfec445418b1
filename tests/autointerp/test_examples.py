"""Example selection from a real feature store."""

from __future__ import annotations

import pytest

from saescope.autointerp.runner import AutoInterpConfig, feature_pages_to_sets
from saescope.autointerp.store_queries import feature_pages, open_feature_store
from saescope.errors import ConfigError, SaescopeError


def _key(ex) -> tuple:
    return (ex.ref.kind, ex.ref.rank, ex.ref.interval)


def test_explain_and_score_sets_are_disjoint(store_path, analysis) -> None:
    cfg = AutoInterpConfig(n_explain=3, n_activating=6, n_inactive=2, n_hard_negatives=4)
    with open_feature_store(store_path) as store:
        (sets,) = feature_pages_to_sets(store, analysis.sae_id, [3], cfg)
        page = store.feature(analysis.sae_id, 3)
    assert [ex.ref.rank for ex in sets.explain] == [0, 2, 4]  # every other top example
    assert {_key(ex) for ex in sets.explain}.isdisjoint(_key(ex) for ex in sets.activating)
    contexts = {ex.ref.context_index for ex in sets.explain}
    assert all(ex.ref.context_index not in contexts for ex in sets.activating)
    kinds = [ex.ref.kind for ex in sets.activating]
    assert "top" in kinds and "quantile" in kinds and len(kinds) <= 6
    assert all(ex.activating and max(ex.acts) > 0 for ex in sets.activating)
    # random inactive contexts: the store's, all-zero activations
    assert [ex.ref.kind for ex in sets.inactive] == ["inactive", "inactive"]
    assert all(not ex.activating and max(ex.acts) == 0 for ex in sets.inactive)
    # hard negatives: top examples of the nearest features by decoder cosine
    near = {n["feature"] for n in page["neighbours"][: cfg.n_neighbours]} - {3}
    assert sets.hard_negatives and len(sets.hard_negatives) <= 4
    assert all(ex.ref.kind == "neighbour" and ex.ref.feature in near for ex in sets.hard_negatives)
    assert all(ex.acts is None and not ex.activating for ex in sets.hard_negatives)
    # texts come from the store: feature 3's top examples are centred on " Paris"
    assert all(ex.tokens[page["examples"]["top"][0]["center"]] for ex in sets.explain)
    assert any(" Paris" in ex.tokens for ex in sets.explain)
    assert sets.max_act == pytest.approx(page["max_act"])


def test_bad_feature_ids_and_stores(store_path, analysis, tmp_path) -> None:
    with open_feature_store(store_path) as store:
        with pytest.raises(ConfigError, match=r"features: got 99; expected feature ids of SAE"):
            feature_pages(store, analysis.sae_id, [3, 99])
        with pytest.raises(SaescopeError, match="has no SAE 'nope'"):
            feature_pages(store, "nope", [3])
    with pytest.raises(SaescopeError, match="has no features.db"), open_feature_store(tmp_path):
        pass
    missing = tmp_path / "missing.db"
    with pytest.raises(SaescopeError, match="no feature store"), open_feature_store(missing):
        pass
