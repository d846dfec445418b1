"""The in-process backend on the bundled SmolLM2-135M-Instruct."""

from __future__ import annotations

import asyncio
import math

import pytest

from saescope.autointerp import (
    AutoInterpConfig,
    BackendError,
    ChatRequest,
    Message,
    TransformersBackend,
    explain_features,
    recompute,
)


def _request(text: str, max_tokens: int = 8) -> ChatRequest:
    return ChatRequest(
        (Message("user", text),), max_tokens=max_tokens, logprobs=True, top_logprobs=3
    )


PROMPTS = ["Name a French city.", "What is 2 + 2? Answer with a list like [4].", "Say hi."]


@pytest.fixture(scope="module")
def backend(smollm2):
    import torch

    threads = torch.get_num_threads()
    yield TransformersBackend(batch_size=4, threads=1)  # one thread: fast on a busy machine
    torch.set_num_threads(threads)


def test_batched_generation_matches_one_at_a_time_with_logprobs(backend) -> None:
    async def run() -> tuple[list, list]:
        together = await asyncio.gather(*(backend.complete(_request(p)) for p in PROMPTS))
        alone = [await backend.complete(_request(p)) for p in PROMPTS]
        await backend.aclose()
        return together, alone

    together, alone = asyncio.run(run())
    assert [c.text for c in together] == [c.text for c in alone]
    for c in together:
        assert c.text and c.prompt_tokens > 10 and 0 < c.completion_tokens <= 8
        assert c.logprobs is not None and len(c.logprobs) >= 1
        assert "".join(t.token for t in c.logprobs) == c.text
        for t in c.logprobs:  # greedy: the chosen token is the most likely one
            assert len(t.top) == 3 and t.logprob <= 0
            assert math.isclose(t.logprob, max(t.top.values()), abs_tol=1e-5)
            assert sum(math.exp(v) for v in t.top.values()) <= 1 + 1e-5


def test_explain_and_detect_in_process(backend, store_path, analysis) -> None:
    cfg = AutoInterpConfig(scorers=("detection",), n_explain=2, n_activating=2, n_inactive=2,
                           n_hard_negatives=0, batch_size=4, explain_max_tokens=30, n_retries=1)  # fmt: skip
    (result,) = explain_features(
        store_path, analysis.sae_id, [5], backend, config=cfg, progress=False
    )
    assert result.error is None and result.explanation is not None
    assert result.explanation.explainer.backend == "transformers"
    assert result.explanation.explainer.model == "smollm2"
    (score,) = result.scores
    assert len(score.predictions) == 4 and recompute(score) == score.metrics
    # where the model answered a list, P(1) comes from the logprobs of its answer
    for p in score.predictions:
        assert (p.predicted is None) == (p.probability is None)


def test_the_bundled_model_answers_detection_and_fuzzing_with_lists(
    backend, store_path, analysis
) -> None:
    """With the demonstrations in the scorer prompts, the 135M default model answers in the
    asked format, a list, and its detection answer parses (without them it answered in prose:
    no score at all). Its fuzzing list here runs on past 5 entries, so that one stays unparsed."""
    cfg = AutoInterpConfig(n_activating=2, n_inactive=2, n_hard_negatives=1, batch_size=5,
                           n_retries=0)  # fmt: skip
    (result,) = explain_features(
        store_path, analysis.sae_id, [5], backend, config=cfg, progress=False,
        explain=False, explanations={5: 'the word " London"'},
    )  # fmt: skip
    detection, fuzzing = result.scores
    for score in (detection, fuzzing):
        assert all(a.text.startswith("[") for a in score.attempts), score.attempts
    assert detection.n_failed == 0 and detection.value is not None
    assert all(p.predicted is not None for p in detection.predictions)


def test_score_a_given_explanation_by_simulation(backend, store_path, analysis) -> None:
    cfg = AutoInterpConfig(scorers=("simulation",), n_activating=1, n_inactive=1, n_retries=0)
    (result,) = explain_features(
        store_path, analysis.sae_id, [5], backend, config=cfg, progress=False,
        explain=False, explanations={5: 'the word " London"'},
    )  # fmt: skip
    assert result.explanation is None
    (score,) = result.scores
    assert [p.ref.kind for p in score.predictions] == ["top", "inactive"]
    for p in score.predictions:
        assert p.true_acts is not None and len(p.true_acts) == 8
        assert p.simulated is None or len(p.simulated) == 8
    assert recompute(score) == score.metrics
    assert score.attempts[0].text  # what the model answered is kept, parsed or not


def test_a_dead_feature_is_recorded_not_asked(backend, store_path, analysis) -> None:
    (result,) = explain_features(store_path, analysis.sae_id, [1], backend, progress=False)
    assert result.explanation is None and result.scores == []
    assert result.error == "the feature has no activating examples"


def test_a_model_that_is_not_there() -> None:
    backend = TransformersBackend("/nonexistent/model-dir")
    with pytest.raises(BackendError, match="model: .*'/nonexistent/model-dir'"):
        asyncio.run(backend.check())
