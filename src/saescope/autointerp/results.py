"""What explaining and scoring produce: plain dataclasses holding everything the store keeps.

An `Explanation` carries its explainer (backend, model, prompt format and version), when it was
made, the tokens it cost, and the raw answers it was parsed from. A `Score` carries the scorer,
its headline value, every metric with the confusion counts, and one `Prediction` per example
shown, so that each number can be recomputed (`recompute`) from what is stored.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from saescope.autointerp import metrics
from saescope.autointerp.examples import ExampleRef


@dataclass
class Explainer:
    backend: str  # "openai" or "transformers"
    model: str
    prompt_format: str  # "delphi", "oai" or "label"
    prompt_version: int


@dataclass
class Attempt:
    """One answer of the LLM and what the parser made of it."""

    text: str
    status: str  # the parser's: "ok", "unmarked", "empty", "malformed"
    error: str = ""


@dataclass
class Explanation:
    sae_id: str
    feature: int
    text: str | None  # None: no usable answer within the retries
    status: str  # the status of the answer used, or of the last one when none was usable
    explainer: Explainer
    created_at: float = field(default_factory=time.time)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    examples: list[ExampleRef] = field(default_factory=list)  # the examples it was made from


@dataclass
class Prediction:
    """What the scorer's model said about one example."""

    ref: ExampleRef
    activating: bool  # the truth: is this an example where the feature fires
    predicted: bool | None = None  # detection/fuzzing answer; None: not answered
    probability: float | None = None  # P(1) from logprobs, where the backend gave them
    # fuzzing: were the marks on the right tokens (the truth fuzzing asks about)
    correctly_marked: bool | None = None
    # simulation: the true and the predicted activation of every token (0-10 scale)
    true_acts: list[float] | None = None
    simulated: list[float] | None = None
    batch: int = 0  # which prompt it was shown in


@dataclass
class Score:
    scorer: str  # "detection", "fuzzing" or "simulation"
    value: float | None  # headline: balanced accuracy (detection, fuzzing) or Pearson r
    metrics: dict[str, Any]
    predictions: list[Prediction]
    prompt_version: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    n_requests: int = 0
    n_failed: int = 0  # prompts whose answer never parsed
    attempts: list[Attempt] = field(default_factory=list)


@dataclass
class FeatureResult:
    sae_id: str
    feature: int
    explanation: Explanation | None
    scores: list[Score] = field(default_factory=list)
    error: str | None = None  # why the feature is unfinished (budget spent, backend down)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def score(self, scorer: str) -> Score | None:
        return next((s for s in self.scores if s.scorer == scorer), None)


def recompute(score: Score) -> dict[str, Any]:
    """The score's metrics, computed again from its stored predictions alone."""
    preds = score.predictions
    if score.scorer == "simulation":
        true, simulated = [], []
        for p in preds:
            if p.simulated is not None and p.true_acts is not None:
                true += p.true_acts
                simulated += p.simulated
        return {"pearson": metrics.pearson(simulated, true), "n_tokens": len(true)}
    truth = [p.correctly_marked if score.scorer == "fuzzing" else p.activating for p in preds]
    return metrics.classification_metrics(
        [bool(t) for t in truth],
        [p.predicted for p in preds],
        [p.probability for p in preds],
    )
