"""Score an explanation: detection, fuzzing (delphi's) and simulation (OpenAI's).

- detection: batches of ~5 unmarked examples, activating and non-activating shuffled together;
  the model says for each whether the explained feature is present.
- fuzzing: the same, with tokens marked <<...>>: activating examples marked where the feature
  fires, non-activating ones marked on random tokens (as many as an activating example has);
  the model says for each whether the marks are on what the explanation describes.
- simulation: per context (activating + random inactive), the model predicts every token's
  activation 0-10 from the explanation; the score is the Pearson correlation with the true
  activations (0-10 of the feature's max) over all tokens. With logprobs a prediction is the
  expected value over the digits, else the number the JSON answer holds.
Detection and fuzzing report balanced accuracy as their value, with every metric alongside.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

from saescope.autointerp import metrics
from saescope.autointerp.asking import Asked, ask
from saescope.autointerp.cache import LLMClient
from saescope.autointerp.examples import ExampleSets, FeatureExample
from saescope.autointerp.parsers import parse_binary_list, parse_simulation
from saescope.autointerp.prompts import (
    PROMPT_VERSIONS,
    Window,
    detection_prompt,
    fuzzing_prompt,
    scaled,
    simulation_prompt,
)
from saescope.autointerp.results import Prediction, Score

SCORERS = ("detection", "fuzzing", "simulation")


async def score_explanation(
    client: LLMClient,
    scorer: str,
    explanation: str,
    sets: ExampleSets,
    *,
    batch_size: int = 5,
    threshold: float = 0.3,
    n_retries: int = 2,
    seed: int = 0,
) -> Score:
    if scorer == "simulation":
        return await score_simulation(client, explanation, sets, n_retries=n_retries)
    return await score_classification(
        client,
        scorer,
        explanation,
        sets,
        batch_size=batch_size,
        threshold=threshold,
        n_retries=n_retries,
        seed=seed,
    )


def _mislabeled(example: FeatureExample, n_marked: int, rng: random.Random) -> Window:
    """The example with `n_marked` random tokens marked, as fuzzing shows a wrong labelling."""
    n = len(example.tokens)
    chosen = set(rng.sample(range(n), min(max(1, n_marked), n)))
    return Window(example.tokens, [1.0 if i in chosen else 0.0 for i in range(n)])


def _typical_marked(examples: Sequence[FeatureExample], threshold: float) -> int:
    counts = []
    for ex in examples:
        acts = ex.acts or []
        top = max(acts, default=0.0)
        counts.append(sum(1 for a in acts if a > threshold * top and a > 0))
    return sorted(counts)[len(counts) // 2] if counts else 1


async def score_classification(
    client: LLMClient,
    scorer: str,
    explanation: str,
    sets: ExampleSets,
    *,
    batch_size: int = 5,
    threshold: float = 0.3,
    n_retries: int = 2,
    seed: int = 0,
) -> Score:
    """Detection or fuzzing over the sets' activating and non-activating examples."""
    rng = random.Random(f"{seed}/{scorer}/{sets.feature}")
    shown = [*sets.activating, *sets.non_activating]
    rng.shuffle(shown)
    n_marked = _typical_marked(sets.activating, threshold)
    windows = [ex.window() if ex.activating else _mislabeled(ex, n_marked, rng) for ex in shown]
    batches = [
        list(range(start, min(start + batch_size, len(shown))))
        for start in range(0, len(shown), batch_size)
    ]

    async def one(batch: list[int]) -> Asked:
        if scorer == "fuzzing":
            messages = fuzzing_prompt(explanation, [windows[i] for i in batch], threshold)
        else:
            messages = detection_prompt(explanation, [windows[i] for i in batch])
        return await ask(
            client,
            messages,
            lambda c: parse_binary_list(c.text, len(batch), c.logprobs),
            max_tokens=8 + 3 * len(batch),
            logprobs=True,
            n_retries=n_retries,
        )

    answers = await asyncio.gather(*(one(batch) for batch in batches))
    predictions: list[Prediction] = []
    for b, (batch, asked) in enumerate(zip(batches, answers, strict=True)):
        values = asked.parsed.value if asked.parsed.status == "ok" else None
        probs = asked.parsed.probabilities if values is not None else None
        for j, i in enumerate(batch):
            ex = shown[i]
            predictions.append(
                Prediction(
                    ref=ex.ref,
                    activating=ex.activating,
                    predicted=None if values is None else bool(values[j]),
                    probability=None if probs is None else probs[j],
                    correctly_marked=ex.activating if scorer == "fuzzing" else None,
                    batch=b,
                )
            )
    found = metrics.classification_metrics(
        [p.activating for p in predictions],
        [p.predicted for p in predictions],
        [p.probability for p in predictions],
    )
    return _score(scorer, found["balanced_accuracy"], found, predictions, answers)


async def score_simulation(
    client: LLMClient, explanation: str, sets: ExampleSets, *, n_retries: int = 2
) -> Score:
    """Pearson r of simulated and true activations over activating and random inactive contexts."""
    shown = [*sets.activating, *sets.inactive]

    async def one(ex: FeatureExample) -> Asked:
        return await ask(
            client,
            simulation_prompt(explanation, ex.tokens),
            lambda c: parse_simulation(c.text, len(ex.tokens), c.logprobs),
            max_tokens=12 + 3 * len(ex.tokens),  # '{"activations": [' and 'n, ' per token
            logprobs=True,
            n_retries=n_retries,
        )

    answers = await asyncio.gather(*(one(ex) for ex in shown))
    predictions = []
    for b, (ex, asked) in enumerate(zip(shown, answers, strict=True)):
        simulated = None
        if asked.parsed.status == "ok":
            expected = asked.parsed.probabilities
            simulated = (
                [float(v) for v in expected]  # type: ignore[arg-type]
                if expected is not None and all(v is not None for v in expected)
                else list(asked.parsed.value)
            )
        predictions.append(
            Prediction(
                ref=ex.ref,
                activating=ex.activating,
                true_acts=[float(scaled(a, sets.max_act)) for a in ex.acts or []],
                simulated=simulated,
                batch=b,
            )
        )
    true: list[float] = []
    predicted: list[float] = []
    for p in predictions:
        if p.simulated is not None and p.true_acts is not None:
            true += p.true_acts
            predicted += p.simulated
    r = metrics.pearson(predicted, true)
    found = {"pearson": r, "n_tokens": len(true)}
    return _score("simulation", r, found, predictions, answers)


def _score(
    scorer: str,
    value: float | None,
    found: dict,
    predictions: list[Prediction],
    answers: Sequence[Asked],
) -> Score:
    return Score(
        scorer=scorer,
        value=value,
        metrics=found,
        predictions=predictions,
        prompt_version=PROMPT_VERSIONS[scorer],
        prompt_tokens=sum(a.prompt_tokens for a in answers),
        completion_tokens=sum(a.completion_tokens for a in answers),
        n_requests=sum(len(a.attempts) for a in answers),
        n_failed=sum(1 for a in answers if a.parsed.status != "ok"),
        attempts=[attempt for a in answers for attempt in a.attempts],
    )
