"""Explanations, labels and their scores in the store (schema v4), on SQLite and PostgreSQL:
several per feature with one current, set by hand or written from auto-interp results built
from the real autointerp dataclasses; the mirrors the browser, search and overview read; and
every stored score recomputed from its stored predictions."""

from __future__ import annotations

import pytest

from saescope.autointerp.examples import ExampleRef
from saescope.autointerp.results import (
    Attempt,
    Explainer,
    Explanation,
    FeatureResult,
    Prediction,
    Score,
    recompute,
)
from saescope.autointerp.store_write import stored_score
from saescope.errors import ConfigError, SaescopeError
from tests.store.store_data import make_analysis

DELPHI = Explainer("openai", "Qwen/Qwen2.5-7B-Instruct", "delphi", 1)
OAI = Explainer("transformers", "SmolLM2-135M-Instruct", "oai", 1)
LABELS = Explainer("openai", "Qwen/Qwen2.5-7B-Instruct", "label", 1)


def classification(
    scorer: str,
    feature: int,
    truth: list[bool],
    answers: list[bool | None],
    probabilities: list[float | None] | None = None,
) -> Score:
    """A detection / fuzzing score over examples whose truth and answers are given."""
    probabilities = probabilities or [None] * len(truth)
    predictions = [
        Prediction(
            ref=ExampleRef(feature, "top" if y else "inactive", i, context_index=100 + i),
            activating=y if scorer == "detection" else True,
            predicted=a,
            probability=q,
            correctly_marked=y if scorer == "fuzzing" else None,
            batch=i // 5,
        )
        for i, (y, a, q) in enumerate(zip(truth, answers, probabilities, strict=True))
    ]
    score = Score(
        scorer,
        None,
        {},
        predictions,
        prompt_version=2,
        prompt_tokens=300,
        completion_tokens=12,
        n_requests=2,
        n_failed=0,
        attempts=[Attempt("[1, 0, 1, 1, 0]", "ok")],
    )
    score.metrics = recompute(score)
    score.value = score.metrics["balanced_accuracy"]
    return score


def simulation(feature: int, true_acts: list[list[float]], simulated: list[list[float]]) -> Score:
    predictions = [
        Prediction(ExampleRef(feature, "top", i), activating=True, true_acts=t, simulated=s)
        for i, (t, s) in enumerate(zip(true_acts, simulated, strict=True))
    ]
    score = Score("simulation", None, {}, predictions, prompt_version=1)
    score.metrics = recompute(score)
    score.value = score.metrics["pearson"]
    return score


def explained(
    sae_id: str,
    feature: int,
    text: str | None,
    scores: list[Score],
    explainer: Explainer = DELPHI,
    status: str = "ok",
) -> FeatureResult:
    explanation = Explanation(
        sae_id,
        feature,
        text,
        status,
        explainer,
        created_at=1_700_000_000.0 + feature,
        prompt_tokens=812,
        completion_tokens=23,
        attempts=[Attempt(f"Explanation: {text}", status)],
        examples=[ExampleRef(feature, "top", 0, context_index=5, position=7)],
    )
    return FeatureResult(sae_id, feature, explanation, scores)


# truth / answers with a known confusion: tp 2, fn 1, fp 1, tn 2
TRUTH = [True, True, True, False, False, False]
ANSWERS = [True, True, False, True, False, False]


@pytest.fixture
def sae_id(store) -> str:
    analysis = make_analysis()
    store.write_analysis(analysis)
    return analysis.sae_id


def test_results_are_stored_with_explainer_cost_scores_and_become_current(store, sae_id):
    detection = classification("detection", 10, TRUTH, ANSWERS, [0.9, 0.8, 0.4, 0.6, 0.1, 0.2])
    written = store.write_autointerp_results(
        [explained(sae_id, 10, "Names of European capital cities", [detection])]
    )
    assert written == 2  # the explanation and its score
    [stored] = store.explanations(sae_id, 10)
    assert stored["kind"] == "explanation" and stored["current"] and stored["status"] == "ok"
    assert stored["text"] == "Names of European capital cities"
    assert stored["explainer"] == {
        "backend": "openai",
        "model": "Qwen/Qwen2.5-7B-Instruct",
        "prompt_format": "delphi",
        "prompt_version": 1,
    }
    assert (stored["prompt_tokens"], stored["completion_tokens"]) == (812, 23)
    assert stored["created_at"].startswith("2023-11-14T22:13:30")  # 1_700_000_010 UTC
    [score] = stored["scores"]
    assert score["scorer"] == "detection" and score["n_predictions"] == 6
    assert score["value"] == pytest.approx(2 / 3)
    assert {k: score["metrics"][k] for k in ("tp", "fp", "tn", "fn")} == {
        "tp": 2,
        "fp": 1,
        "tn": 2,
        "fn": 1,
    }
    assert score["metrics"]["auc"] == pytest.approx(8 / 9)  # 8 of 9 positive/negative pairs
    page = store.feature(sae_id, 10)
    assert page["explanation"] == "Names of European capital cities"
    assert page["explanations"] == [stored]
    assert page["scores"]["detection"] == pytest.approx(2 / 3)
    record = store.explanation_score(score["id"])
    assert record["n_requests"] == 2 and record["attempts"] == [
        {"text": "[1, 0, 1, 1, 0]", "status": "ok", "error": ""}
    ]
    assert record["explanation"] == "Names of European capital cities"


def test_a_newer_explanation_becomes_current_and_an_older_one_can_be_made_current_again(
    store, sae_id
):
    store.write_autointerp_results([explained(sae_id, 12, "French words", [])])
    store.write_autointerp_results(
        [explained(sae_id, 12, "Words in French and Italian", [], explainer=OAI)]
    )
    listed = store.explanations(sae_id, 12)
    assert [(e["text"], e["current"]) for e in listed] == [
        ("Words in French and Italian", True),
        ("French words", False),
    ]
    assert store.feature(sae_id, 12)["explanation"] == "Words in French and Italian"
    store.set_current_explanation(sae_id, 12, listed[1]["id"])
    assert [(e["text"], e["current"]) for e in store.explanations(sae_id, 12)] == [
        ("French words", True),
        ("Words in French and Italian", False),
    ]
    assert store.feature(sae_id, 12)["explanation"] == "French words"
    assert [r["feature"] for r in store.search("french words")] == [12]
    assert store.search("italian") == []
    # kept but not made current: the current one stays
    store.write_autointerp_results(
        [explained(sae_id, 12, "Romance languages", [], explainer=OAI)], current=False
    )
    assert store.feature(sae_id, 12)["explanation"] == "French words"
    assert [e["text"] for e in store.explanations(sae_id, 12)][0] == "French words"


def test_a_label_is_current_beside_the_explanation_and_search_finds_it(store, sae_id):
    store.write_autointerp_results(
        [
            explained(sae_id, 20, "Tokens of Python import statements", []),
            explained(sae_id, 20, "python imports", [], explainer=LABELS),
        ]
    )
    page = store.feature(sae_id, 20)
    assert (page["explanation"], page["label"]) == (
        "Tokens of Python import statements",
        "python imports",
    )
    assert {(e["kind"], e["current"]) for e in page["explanations"]} == {
        ("explanation", True),
        ("label", True),
    }
    item = store.features(sae_id, sort_by="feature", descending=False, offset=20, limit=1)
    assert item["items"][0]["label"] == "python imports"
    # a word only the explanation has, and one only the label has
    assert [(r["feature"], r["field"]) for r in store.search("statements")] == [(20, "explanation")]
    store.set_explanation(sae_id, 20, None)
    assert [(r["feature"], r["field"], r["label"]) for r in store.search("imports")] == [
        (20, "label", "python imports")
    ]
    assert store.sae_summary(sae_id)["n_labelled"] == 1


def test_an_explanation_set_by_hand_is_manual_and_clearing_keeps_the_rows(store, sae_id):
    store.write_autointerp_results([explained(sae_id, 30, "Numbers followed by %", [])])
    store.set_explanation(sae_id, 30, "  percentages  ")
    first, second = store.explanations(sae_id, 30)
    assert (first["text"], first["current"], first["explainer"]["backend"]) == (
        "percentages",
        True,
        "manual",
    )
    assert first["explainer"]["model"] == "" and not second["current"]
    assert store.sae_summary(sae_id)["n_explained"] == 1
    store.set_explanation(sae_id, 30, "")
    assert [e["current"] for e in store.explanations(sae_id, 30)] == [False, False]
    assert store.feature(sae_id, 30)["explanation"] is None
    assert store.search("percentages") == []
    assert store.sae_summary(sae_id)["n_explained"] == 0
    manual_id = store.add_explanation(sae_id, 30, "per cent signs")
    assert store.explanations(sae_id, 30)[0]["id"] == manual_id
    assert store.feature(sae_id, 30)["explanation"] == "per cent signs"


def test_scoring_only_results_attach_to_the_current_explanation(store, sae_id):
    store.set_explanation(sae_id, 40, "The word cat")
    fuzzing = classification("fuzzing", 40, TRUTH, ANSWERS)
    written = store.write_autointerp_results([FeatureResult(sae_id, 40, None, [fuzzing])])
    assert written == 1
    [stored] = store.explanations(sae_id, 40)
    assert stored["explainer"]["backend"] == "manual"
    assert [s["scorer"] for s in stored["scores"]] == ["fuzzing"]
    assert store.feature(sae_id, 40)["scores"]["fuzzing"] == pytest.approx(2 / 3)
    # a result the run never reached (no explanation, no score) writes nothing
    assert store.write_autointerp_results([FeatureResult(sae_id, 41, None, error="budget")]) == 0


def test_scores_without_a_current_explanation_are_refused_and_nothing_of_the_batch_is_kept(
    store, sae_id
):
    detection = classification("detection", 42, TRUTH, ANSWERS)
    before = store.list_saes()[0]["written_at"]
    with pytest.raises(SaescopeError, match="feature 42 .* no current explanation"):
        store.write_autointerp_results(
            [
                explained(sae_id, 43, "Quotation marks", []),
                FeatureResult(sae_id, 42, None, [detection]),
            ]
        )
    assert store.explanations(sae_id, 43) == []
    assert store.list_saes()[0]["written_at"] == before


def test_the_feature_list_sorts_and_filters_by_each_scorer(store, sae_id):
    answers = {  # balanced accuracy: 1, 2/3, 1/2
        50: TRUTH,
        51: ANSWERS,
        52: [True, False, False, True, False, False],
    }
    store.write_autointerp_results(
        [
            explained(
                sae_id,
                f,
                f"explanation {f}",
                [
                    classification("detection", f, TRUTH, a),
                    simulation(f, [[0, 0, 10, 2]], [[0, 1, 9, 3]]),
                ],
            )
            for f, a in answers.items()
        ]
    )
    names = store.sae_summary(sae_id)["score_names"]
    assert {"detection", "simulation"} <= set(names)
    page = store.features(sae_id, sort_by="detection")
    assert [(i["feature"], i["detection"]) for i in page["items"]] == [
        (50, 1.0),
        (51, pytest.approx(2 / 3)),
        (52, 0.5),
    ]
    assert page["items"][0]["explanation"] == "explanation 50"
    kept = store.features(sae_id, sort_by="density", ranges={"detection": (0.6, None)})
    assert sorted(i["feature"] for i in kept["items"]) == [50, 51]
    assert store.features(sae_id, sort_by="simulation")["total"] == 3
    # a newer score of the same scorer is the one mirrored
    [current] = [e for e in store.explanations(sae_id, 52) if e["current"]]
    rescored = classification("detection", 52, TRUTH, TRUTH)
    store.add_explanation_score(
        current["id"],
        "detection",
        rescored.value,
        metrics=rescored.metrics,
        predictions=rescored.predictions,
        prompt_version=2,
    )
    assert (
        store.features(sae_id, sort_by="detection", ranges={"detection": (1.0, 1.0)})["total"] == 2
    )
    # switching to an explanation without scores takes its feature out of the scorer's list
    store.set_explanation(sae_id, 50, "hand-written, never scored")
    assert [i["feature"] for i in store.features(sae_id, sort_by="detection")["items"]] == [
        52,
        51,
    ]


def test_a_reanalysis_keeps_explanations_labels_and_their_score_mirrors(store, sae_id):
    store.write_autointerp_results(
        [
            explained(
                sae_id, 60, "Closing brackets", [classification("detection", 60, TRUTH, ANSWERS)]
            ),
            explained(sae_id, 60, "brackets", [], explainer=LABELS),
        ]
    )
    store.set_explanation(sae_id, 61, "Newlines")
    listed = store.explanations(sae_id, 60)
    store.write_analysis(make_analysis(seed=3))  # the same SAE analysed again
    assert store.explanations(sae_id, 60) == listed
    page = store.feature(sae_id, 60)
    assert (page["explanation"], page["label"]) == ("Closing brackets", "brackets")
    assert page["scores"]["detection"] == pytest.approx(2 / 3)
    assert "detection" in store.sae_summary(sae_id)["score_names"]
    assert [i["feature"] for i in store.features(sae_id, sort_by="detection")["items"]] == [60]
    assert {r["feature"] for r in store.search("brackets")} == {60}
    assert store.feature(sae_id, 61)["explanation"] == "Newlines"
    # the analysis read back is the analysis: no auto-interp score in it
    assert "detection" not in store.load_analysis(sae_id).features.scores
    # a smaller SAE under the same name drops the explanations of features it no longer has
    store.write_analysis(make_analysis(d_sae=61, seed=3))
    assert store.feature(sae_id, 60)["explanation"] == "Closing brackets"
    with pytest.raises(SaescopeError, match="feature: got 61"):
        store.explanations(sae_id, 61)


def test_every_stored_score_recomputes_from_its_stored_predictions(store, sae_id):
    scores = [
        classification(
            "detection",
            33,
            TRUTH,
            [True, None, False, True, False, True],
            [0.7, None, 0.3, 0.6, 0.2, 0.8],
        ),
        classification("fuzzing", 33, TRUTH, ANSWERS),
        simulation(33, [[0.0, 3.0, 10.0], [0.0, 0.0, 1.0]], [[1.0, 2.0, 8.0], [0.0, 1.0, 0.0]]),
    ]
    store.write_autointerp_results([explained(sae_id, 33, "Berlin", scores)])
    [stored] = store.explanations(sae_id, 33)
    assert [s["scorer"] for s in stored["scores"]] == ["detection", "fuzzing", "simulation"]
    for listed, original in zip(stored["scores"], scores, strict=True):
        record = store.explanation_score(listed["id"])
        back = stored_score(record)
        assert back.predictions == original.predictions  # every field of every example
        assert recompute(back) == pytest.approx(record["metrics"])
        assert record["metrics"] == pytest.approx(original.metrics)
    detection = store.explanation_score(stored["scores"][0]["id"])["metrics"]
    # by hand: the unanswered example is left out; tp 1 (ex 0), fn 1 (ex 2), fp 2, tn 1
    assert (detection["tp"], detection["fn"], detection["fp"], detection["tn"]) == (1, 1, 2, 1)
    assert detection["balanced_accuracy"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    simulated = store.explanation_score(stored["scores"][2]["id"])
    assert simulated["metrics"]["n_tokens"] == 6
    assert simulated["value"] == pytest.approx(simulated["metrics"]["pearson"])


def test_every_write_bumps_written_at(store, sae_id):
    seen = [store.list_saes()[0]["written_at"]]

    def bumped() -> bool:
        now = store.list_saes()[0]["written_at"]
        fresh = now not in seen
        seen.append(now)
        return fresh

    store.set_explanation(sae_id, 34, "Paris")
    assert bumped()
    explanation_id = store.add_explanation(sae_id, 34, "London", current=False)
    assert bumped()
    store.set_current_explanation(sae_id, 34, explanation_id)
    assert bumped()
    score = classification("detection", 34, TRUTH, ANSWERS)
    store.add_explanation_score(
        explanation_id,
        "detection",
        score.value,
        metrics=score.metrics,
        predictions=score.predictions,
    )
    assert bumped()
    store.write_autointerp_results([explained(sae_id, 35, "cafe", [])])
    assert bumped()
    store.set_explanation(sae_id, 34, None)
    assert bumped()


def test_the_score_summary_is_over_current_explanations(store, sae_id):
    results = [
        explained(sae_id, f, f"e{f}", [classification("detection", f, TRUTH, a)])
        for f, a in ((44, TRUTH), (45, ANSWERS), (46, ANSWERS))
    ]
    results.append(explained(sae_id, 47, "anti", [simulation(47, [[0, 5, 10]], [[10, 5, 0]])]))
    store.write_autointerp_results(results)
    summary = store.interp_score_summary(sae_id)
    assert summary == store.sae_summary(sae_id)["interp_scores"]
    detection = summary["detection"]
    assert detection["n"] == 3 and detection["mean"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert len(detection["histogram"]["edges"]) == 21 and detection["histogram"]["edges"][0] == 0
    assert sum(detection["histogram"]["counts"]) == 3
    assert detection["histogram"]["counts"][-1] == 1  # the 1.0 falls in the last bin
    assert detection["histogram"]["counts"][13] == 2  # 2/3 in [0.65, 0.7)
    simulated = summary["simulation"]
    assert simulated["mean"] == pytest.approx(-1.0)
    assert simulated["histogram"]["edges"][0] == -1.0 and simulated["histogram"]["counts"][0] == 1
    store.set_explanation(sae_id, 44, "not scored")  # no longer counted
    assert store.interp_score_summary(sae_id)["detection"]["n"] == 2


def test_a_failed_explanation_is_kept_for_its_cost_but_never_current(store, sae_id):
    store.set_explanation(sae_id, 48, "The letter e")
    store.write_autointerp_results(
        [explained(sae_id, 48, None, [], status="malformed")], current=True
    )
    listed = store.explanations(sae_id, 48)
    assert [(e["text"], e["current"], e["status"]) for e in listed] == [
        ("The letter e", True, "ok"),
        (None, False, "malformed"),
    ]
    with pytest.raises(SaescopeError, match="has no text .*'malformed'"):
        store.set_current_explanation(sae_id, 48, listed[1]["id"])


def test_bad_input_names_the_field(store, sae_id):
    with pytest.raises(SaescopeError, match=r"feature: got 64; SAE .* has features 0\.\.63"):
        store.set_explanation(sae_id, 64, "out of range")
    with pytest.raises(SaescopeError, match=r"feature: got 64"):
        store.write_autointerp_results([explained(sae_id, 64, "x", [])])
    with pytest.raises(ConfigError, match="kind"):
        store.add_explanation(sae_id, 3, "x", kind="summary")
    with pytest.raises(ConfigError, match="text"):
        store.add_explanation(sae_id, 3, "   ")
    other = store.add_explanation(sae_id, 4, "four")
    with pytest.raises(SaescopeError, match="explanation_id: .* of feature 4 .*not of feature 3"):
        store.set_current_explanation(sae_id, 3, other)
    with pytest.raises(SaescopeError, match="explanation_id: got 99999"):
        store.add_explanation_score(99999, "detection", 0.5, metrics={}, predictions=[])
    with pytest.raises(SaescopeError, match="score_id: got 99999"):
        store.explanation_score(99999)
    with pytest.raises(SaescopeError, match="no SAE 'nope'"):
        store.explanations("nope", 3)


def test_deleting_an_sae_deletes_its_explanations(store, sae_id):
    store.write_autointerp_results(
        [explained(sae_id, 10, "gone", [classification("detection", 10, TRUTH, ANSWERS)])]
    )
    store.delete_sae(sae_id)
    store.write_analysis(make_analysis())
    assert store.explanations(sae_id, 10) == []
    assert store.interp_score_summary(sae_id) == {}
    assert "detection" not in store.sae_summary(sae_id)["score_names"]
