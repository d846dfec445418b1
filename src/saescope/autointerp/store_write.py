"""Write auto-interp results into a feature store, and read a stored score back as a `Score`.

`write_results(store_or_run, results)` is the Python way to keep what `explain_features`
returned: each explanation with its scores becomes the feature's current one (or not, with
`current=False`), and scoring-only results attach to the current explanation. `stored_score`
turns `FeatureStore.explanation_score(id)` back into a `Score`, so `recompute` can check it.
"""

from __future__ import annotations

from typing import Any

from saescope.autointerp.examples import ExampleRef
from saescope.autointerp.results import Attempt, FeatureResult, Prediction, Score
from saescope.autointerp.store_queries import open_feature_store


def write_results(store_or_run: Any, results: list[FeatureResult], current: bool = True) -> int:
    """Store `results` in a feature store (a FeatureStore, a store file, a postgresql:// URL or
    a run directory holding features.db); returns the rows written (explanations and scores)."""
    with open_feature_store(store_or_run) as store:
        return store.write_autointerp_results(results, current=current)


def stored_score(record: dict[str, Any]) -> Score:
    """A Score from what FeatureStore.explanation_score returns, predictions included."""
    return Score(
        scorer=record["scorer"],
        value=record["value"],
        metrics=record["metrics"],
        predictions=[_prediction(p) for p in record["predictions"]],
        prompt_version=record["prompt_version"],
        prompt_tokens=record["prompt_tokens"],
        completion_tokens=record["completion_tokens"],
        n_requests=record.get("n_requests", 0),
        n_failed=record.get("n_failed", 0),
        attempts=[Attempt(**a) for a in record.get("attempts", [])],
    )


def _prediction(stored: dict[str, Any]) -> Prediction:
    return Prediction(**{**stored, "ref": ExampleRef(**stored["ref"])})
