"""Every metric against a hand computation from stored predictions."""

from __future__ import annotations

import math

import pytest

from saescope.autointerp.examples import ExampleRef
from saescope.autointerp.metrics import classification_metrics, pearson, roc_auc
from saescope.autointerp.results import Prediction, Score, recompute


def _pred(activating: bool, predicted: bool | None, probability: float | None) -> Prediction:
    return Prediction(ExampleRef(3, "top", 0), activating, predicted, probability)


# truth:      1    1    1    0    0    0    1
# predicted:  1    1    0    1    0    0    None (not answered)
PREDICTIONS = [
    _pred(True, True, 0.9),
    _pred(True, True, 0.8),
    _pred(True, False, 0.4),
    _pred(False, True, 0.7),
    _pred(False, False, 0.2),
    _pred(False, False, 0.4),
    _pred(True, None, None),
]


def test_classification_metrics_by_hand() -> None:
    found = classification_metrics(
        [p.activating for p in PREDICTIONS],
        [p.predicted for p in PREDICTIONS],
        [p.probability for p in PREDICTIONS],
    )
    # answered: 6; tp=2 fp=1 tn=2 fn=1
    assert (found["n"], found["n_answered"]) == (7, 6)
    assert (found["tp"], found["fp"], found["tn"], found["fn"]) == (2, 1, 2, 1)
    assert found["accuracy"] == pytest.approx(4 / 6)
    assert found["precision"] == pytest.approx(2 / 3)
    assert found["recall"] == pytest.approx(2 / 3)
    assert found["f1"] == pytest.approx(2 / 3)
    assert found["balanced_accuracy"] == pytest.approx((2 / 3 + 2 / 3) / 2)
    # AUC: positives .9 .8 .4, negatives .7 .2 .4: pairs won 3 + 3 + (0 + 1 + 0.5) = 7.5 of 9
    assert found["auc"] == pytest.approx(7.5 / 9)


def test_recompute_from_a_stored_score() -> None:
    score = Score("detection", 2 / 3, {}, PREDICTIONS, prompt_version=1)
    assert recompute(score)["balanced_accuracy"] == pytest.approx(2 / 3)
    # fuzzing asks whether marks are right: the truth is correctly_marked
    fuzz = [
        Prediction(ExampleRef(3, "top", 0), True, True, None, correctly_marked=True),
        Prediction(ExampleRef(3, "inactive", 0), False, True, None, correctly_marked=False),
    ]
    found = recompute(Score("fuzzing", None, {}, fuzz, prompt_version=1))
    assert (found["tp"], found["fp"], found["accuracy"], found["auc"]) == (1, 1, 0.5, None)


def test_edge_cases_are_none_not_errors() -> None:
    found = classification_metrics([True, True], [False, False], [None, None])
    assert found["precision"] is None and found["f1"] is None
    assert found["balanced_accuracy"] is None  # no negatives
    assert found["auc"] is None
    assert roc_auc([True, True], [0.1, 0.2]) is None
    assert classification_metrics([], [], [])["accuracy"] is None


def test_pearson_by_hand() -> None:
    x, y = [0.0, 1.0, 2.0, 3.0], [0.0, 2.0, 1.0, 3.0]
    # means 1.5, 1.5; sxy = 2.25+(-0.5*0.5)+(0.5*-0.5)+2.25 = 4; sxx = syy = 5
    assert pearson(x, y) == pytest.approx(4 / 5)
    assert pearson([1.0, 1.0], [0.0, 1.0]) is None
    assert pearson([1.0], [1.0]) is None
    simulated = [
        Prediction(ExampleRef(3, "top", 0), True, true_acts=[0.0, 1.0], simulated=[0.0, 2.0]),
        Prediction(ExampleRef(3, "inactive", 0), False, true_acts=[2.0, 3.0], simulated=[1.0, 3.0]),
        Prediction(ExampleRef(3, "top", 1), True, true_acts=[9.0], simulated=None),  # unanswered
    ]
    found = recompute(Score("simulation", None, {}, simulated, prompt_version=1))
    assert found["n_tokens"] == 4
    assert math.isclose(found["pearson"], 4 / 5)
