"""The OpenAI-compatible backend against a real `transformers serve` of the bundled SmolLM2,
driven through the official openai client as a user's vLLM would be (tests/autointerp/
llm_server.py). Its chat endpoint returns no logprobs, so the simulator's JSON path runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict

import pytest

from saescope.autointerp import (
    AutoInterpConfig,
    BackendError,
    OpenAIBackend,
    RequestCache,
    explain_features,
    recompute,
)
from tests.autointerp import llm_server

STATUSES = {"ok", "unmarked", "empty", "malformed", "error"}
SMALL = AutoInterpConfig(
    scorers=("detection", "fuzzing", "simulation"),
    n_explain=3,
    n_activating=3,
    n_inactive=2,
    n_hard_negatives=1,
    batch_size=3,
    explain_max_tokens=40,
    n_retries=0,  # retries are the in-process test's
)


def test_explain_and_score_through_the_server(llm, store_path, analysis, tmp_path) -> None:
    llm.counter.reset()
    backend = OpenAIBackend(llm.base_url, llm.model, max_concurrency=4)
    cache = tmp_path / "cache"
    (result,) = explain_features(
        store_path, analysis.sae_id, [3], backend, config=SMALL, cache_dir=cache, progress=False
    )
    assert result.error is None
    explanation = result.explanation
    assert explanation is not None
    assert asdict(explanation.explainer) == {
        "backend": "openai",
        "model": llm.model,
        "prompt_format": "delphi",
        "prompt_version": 1,
    }
    assert explanation.attempts and all(a.status in STATUSES for a in explanation.attempts)
    assert explanation.prompt_tokens > 0 and explanation.completion_tokens > 0
    assert [ref.rank for ref in explanation.examples] == [0, 2, 4]
    assert [s.scorer for s in result.scores] == ["detection", "fuzzing", "simulation"]
    for score in result.scores:
        assert all(a.status in STATUSES for a in score.attempts)
        assert score.n_requests >= 1 and score.prompt_tokens > 0
        assert recompute(score) == score.metrics  # every score from its stored predictions
    detection = result.score("detection")
    assert len(detection.predictions) == 3 + 2 + 1  # activating + inactive + hard negative
    assert all(p.probability is None for p in detection.predictions)  # no logprobs served
    simulation = result.score("simulation")
    assert [p.ref.kind for p in simulation.predictions].count("inactive") == 2
    # requests went out together, not one at a time
    assert llm.counter.max_in_flight > 1
    sent = len(llm.counter.received)
    assert sent == len(RequestCache(cache)) == backend_requests(result)

    # the same run again is answered from the cache: nothing reaches the server
    (again,) = explain_features(
        store_path, analysis.sae_id, [3], backend, config=SMALL, cache_dir=cache, progress=False
    )
    assert len(llm.counter.received) == sent
    assert again.explanation.text == explanation.text
    assert [s.metrics for s in again.scores] == [s.metrics for s in result.scores]


def backend_requests(result) -> int:
    return len(result.explanation.attempts) + sum(s.n_requests for s in result.scores)


def test_budget_guard_stops_and_the_rest_resumes(llm, store_path, analysis, tmp_path) -> None:
    llm.counter.reset()
    backend = OpenAIBackend(llm.base_url, llm.model, max_concurrency=2)
    cfg = AutoInterpConfig(scorers=("detection",), n_explain=2, n_activating=2, n_inactive=1,
                           n_hard_negatives=0, batch_size=3, explain_max_tokens=30, n_retries=0)  # fmt: skip
    results = explain_features(
        store_path, analysis.sae_id, [3, 5], backend, config=cfg,
        cache_dir=tmp_path / "cache", max_requests=2, progress=False,
    )  # fmt: skip
    assert len(llm.counter.received) == 2
    assert any(r.error and r.error.startswith("max_requests") for r in results)


RUN_SCRIPT = """
import sys
from saescope.autointerp import AutoInterpConfig, OpenAIBackend, explain_features
cfg = AutoInterpConfig(scorers=("detection",), n_explain=2, n_activating=2, n_inactive=1,
                       n_hard_negatives=1, batch_size=2, explain_max_tokens=30, n_retries=0)
backend = OpenAIBackend(sys.argv[1], sys.argv[2], max_concurrency=2)
explain_features(sys.argv[3], sys.argv[4], [3, 5], backend, config=cfg, cache_dir=sys.argv[5],
                 progress=False)
"""


def test_resume_after_sigkill_repeats_no_answered_request(
    llm, store_path, analysis, tmp_path
) -> None:
    llm.counter.reset()
    script = tmp_path / "run.py"
    script.write_text(RUN_SCRIPT)
    cache = tmp_path / "cache"
    args = [llm.base_url, llm.model, str(store_path), analysis.sae_id, str(cache)]
    process = subprocess.Popen([sys.executable, str(script), *args], env=os.environ.copy())
    deadline = time.monotonic() + 240
    while len(llm.counter.answered) < 3 and process.poll() is None:
        assert time.monotonic() < deadline, "the run answered fewer than 3 requests in 240 s"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    cached = RequestCache(cache)
    cached_before = {
        llm_server.signature(
            {
                "messages": [asdict(m) for m in r.messages],
                "max_tokens": r.max_tokens,
                "temperature": r.temperature,
            }
        )
        for r in cached.requests()
    }
    cached.close()
    answered_before = set(llm.counter.answered)
    received_before = len(llm.counter.received)
    assert cached_before and cached_before <= answered_before
    # answered by the server but not yet received by the killed run: at most those in flight
    assert len(answered_before - cached_before) <= 2

    assert subprocess.run([sys.executable, str(script), *args]).returncode == 0
    after = llm.counter.received[received_before:]
    assert after, "the resumed run had requests left to send"
    assert cached_before.isdisjoint(after)  # no answered request was sent again
    assert len(after) == len(set(after))
    # everything is now in the cache: a third run sends nothing
    total = len(llm.counter.received)
    assert subprocess.run([sys.executable, str(script), *args]).returncode == 0
    assert len(llm.counter.received) == total


def test_server_errors_are_retried(llm) -> None:
    import asyncio

    from saescope.autointerp import ChatRequest, Message

    llm.counter.reset()
    llm.counter.fail_next = 2  # two HTTP 503s, then the real server
    backend = OpenAIBackend(llm.base_url, llm.model, backoff_s=0.01)

    async def one():
        try:
            return await backend.complete(ChatRequest((Message("user", "Say hi."),), max_tokens=3))
        finally:
            await backend.aclose()

    answer = asyncio.run(one())
    assert answer.completion_tokens > 0 and llm.counter.fail_next == 0
    assert len(llm.counter.received) == 1  # the third try reached the server


def test_unknown_model_is_named_with_what_the_server_has(llm, store_path, analysis) -> None:
    backend = OpenAIBackend(llm.base_url, "no-such-model")
    with pytest.raises(BackendError, match=r"model: got 'no-such-model'; the LLM server .* serves"):
        explain_features(store_path, analysis.sae_id, [3], backend, progress=False)


def test_unreachable_server_fails_fast_naming_the_url_not_the_key(
    store_path, analysis, monkeypatch
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("SAESCOPE_TEST_LLM_KEY", "sk-very-secret-123")
    url = f"http://user:pw-secret@127.0.0.1:{port}/v1?token=abc"
    backend = OpenAIBackend(url, "m", api_key_env="SAESCOPE_TEST_LLM_KEY")
    started = time.monotonic()
    with pytest.raises(BackendError) as err:
        explain_features(store_path, analysis.sae_id, [3], backend, progress=False)
    assert time.monotonic() - started < 15
    message = str(err.value)
    assert f"http://127.0.0.1:{port}/v1" in message and "cannot be reached" in message
    assert "sk-very-secret" not in message and "pw-secret" not in message
    assert "token=abc" not in message and "\n" not in message


def test_missing_key_variable(monkeypatch) -> None:
    monkeypatch.delenv("SAESCOPE_TEST_NO_KEY", raising=False)
    with pytest.raises(
        BackendError,
        match=r"api_key_env: the environment variable 'SAESCOPE_TEST_NO_KEY' is not set",
    ):
        OpenAIBackend("http://127.0.0.1:1/v1", "m", api_key_env="SAESCOPE_TEST_NO_KEY")
    with pytest.raises(BackendError, match=r"base_url: got 'ftp://x/v1'"):
        OpenAIBackend("ftp://x/v1", "m")
