"""Explanations, labels and interp scores written into a test store through the store's own
methods (FeatureStore.add_explanation / add_explanation_score), as `saescope explain --score`
writes them: no LLM needed to test how the viewer and the dashboards show them."""

from __future__ import annotations

from dataclasses import dataclass, field

from saescope.autointerp.examples import ExampleRef
from saescope.autointerp.results import Explainer, Prediction

EXPLAINER = Explainer(
    backend="openai", model="Qwen/Qwen2.5-7B-Instruct", prompt_format="delphi", prompt_version=1
)
OLD_EXPLAINER = Explainer(
    backend="transformers", model="SmolLM2-135M-Instruct", prompt_format="oai", prompt_version=1
)
LABELLER = Explainer(
    backend="openai", model="Qwen/Qwen2.5-7B-Instruct", prompt_format="label", prompt_version=1
)


@dataclass
class Written:
    """What was written: the current texts and scores by feature, for the tests to compare."""

    explanations: dict[int, str] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)
    scores: dict[int, dict[str, float]] = field(default_factory=dict)
    older: dict[int, str] = field(default_factory=dict)  # a non-current explanation


# feature -> (explanation, label or None, detection, fuzzing, simulation)
CURRENT = {
    3: ("months and dates in running prose", "calendar months", 0.85, 0.7, 0.42),
    5: ("python keywords such as def and return", None, 0.65, 0.6, 0.1),
    9: ("commas and full stops between clauses", "punctuation marks", 0.95, 0.9, 0.7),
}
OLDER = {3: ("the letter m at the start of words", 0.55, 0.5)}  # feature -> (text, det, fuzz)


# what feature 3's detection scorer answered: two top examples and an inactive one
PREDICTIONS = [
    Prediction(ExampleRef(3, "top", 0), activating=True, predicted=True),
    Prediction(ExampleRef(3, "top", 1), activating=True, predicted=False),
    Prediction(ExampleRef(3, "inactive", 0), activating=False, predicted=False),
]


def scored(store, explanation_id: int, values: dict[str, float], feature: int = -1) -> None:
    for scorer, value in values.items():
        metric = "pearson" if scorer == "simulation" else "balanced_accuracy"
        shown = PREDICTIONS if (feature, scorer) == (3, "detection") else []
        store.add_explanation_score(
            explanation_id, scorer, value, metrics={metric: value}, predictions=shown
        )


def write_explanations(store, sae_id: str) -> Written:
    """The explanations above, written into `store` for `sae_id`; the older one first."""
    written = Written()
    for feature, (text, detection, fuzzing) in OLDER.items():
        old = store.add_explanation(sae_id, feature, text, explainer=OLD_EXPLAINER)
        scored(store, old, {"detection": detection, "fuzzing": fuzzing})
        written.older[feature] = text
    for feature, (text, label, detection, fuzzing, simulation) in CURRENT.items():
        current = store.add_explanation(sae_id, feature, text, explainer=EXPLAINER)
        values = {"detection": detection, "fuzzing": fuzzing, "simulation": simulation}
        scored(store, current, values, feature)
        written.explanations[feature] = text
        written.scores[feature] = values
        if label:
            store.add_explanation(sae_id, feature, label, kind="label", explainer=LABELLER)
            written.labels[feature] = label
    return written
