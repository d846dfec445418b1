"""Auto-interp results for the store tests, built from the real autointerp dataclasses (no
LLM): classification scores over examples with given truth and answers (metrics from
`recompute`, as the scorers compute them), simulation scores, explained features."""

from __future__ import annotations

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
