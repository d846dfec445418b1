"""`saescope explain` against a real OpenAI-compatible server (`transformers serve` of the
bundled SmolLM2 behind a counting proxy, tests/autointerp/llm_server.py) on a real analysed
run: killed with SIGKILL mid-run, run again, it finishes without sending any request that was
answered before the kill, and the store holds each feature's explanation once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict

import pytest

from saescope.autointerp import RequestCache
from saescope.cli import main
from saescope.store import open_store
from tests.autointerp import llm_server
from tests.dashboards.real_run import make_run


@pytest.fixture(scope="module")
def run_dir(smollm2, tmp_path_factory):
    source, sae_id = make_run(smollm2, tmp_path_factory.mktemp("cli-server") / "built")
    run = tmp_path_factory.mktemp("cli-server") / "run"
    run.mkdir(exist_ok=True)
    shutil.copy(source / "features.db", run / "features.db")
    with open_store(run / "features.db") as store:
        live = [f for f, d in enumerate(store.densities(sae_id)) if d > 0]
    return run, sae_id, live


def command(llm, run, features: list[int]) -> list[str]:
    return [
        sys.executable, "-m", "saescope", "explain", str(run),
        "--features", ",".join(map(str, features)), "--score", "--scorers", "detection",
        "--backend", "openai", "--base-url", llm.base_url, "--model", llm.model,
        "--max-concurrency", "2", "--n-explain", "2", "--n-activating", "2", "--n-inactive", "1",
        "--n-hard-negatives", "1", "--batch-size", "2", "--explain-max-tokens", "30",
        "--n-retries", "0", "--no-progress",
    ]  # fmt: skip


def signatures(cache_dir) -> set[str]:
    cache = RequestCache(cache_dir)
    try:
        return {
            llm_server.signature(
                {
                    "messages": [asdict(m) for m in r.messages],
                    "max_tokens": r.max_tokens,
                    "temperature": r.temperature,
                }
            )
            for r in cache.requests()
        }
    finally:
        cache.close()


def test_resume_after_sigkill_sends_no_answered_request_again(llm, run_dir) -> None:
    run, sae_id, live = run_dir
    features = live[:3]
    llm.counter.reset()
    argv = command(llm, run, features)
    process = subprocess.Popen(argv, env=os.environ.copy(), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while len(llm.counter.answered) < 4 and process.poll() is None:
        assert time.monotonic() < deadline, "fewer than 4 requests answered in 240 s"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    cached_before = signatures(run / "autointerp_cache")
    answered_before = set(llm.counter.answered)
    received_before = len(llm.counter.received)
    assert cached_before and cached_before <= answered_before
    with open_store(run / "features.db") as store:
        written_before = {f for f in features if store.explanations(sae_id, f)}

    done = subprocess.run(argv, env=os.environ.copy(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    after = llm.counter.received[received_before:]
    assert cached_before.isdisjoint(after)  # no answered request was sent again
    assert len(after) == len(set(after))
    if written_before:
        assert f"{len(written_before)} already done" in done.stdout
    with open_store(run / "features.db") as store:
        for f in features:
            (row,) = store.explanations(sae_id, f)  # once, whatever the kill interrupted
            assert row["explainer"]["backend"] == "openai"
            assert row["explainer"]["model"] == llm.model
            assert [s["scorer"] for s in row["scores"]] == ["detection"]
            assert row["prompt_tokens"] > 0

    total = len(llm.counter.received)
    again = subprocess.run(argv, env=os.environ.copy(), capture_output=True, text=True)
    assert again.returncode == 0 and len(llm.counter.received) == total
    assert "3 already done" in again.stdout and "0 requests sent" in again.stdout


def test_a_model_the_server_does_not_have(llm, run_dir, capsys) -> None:
    run, _, live = run_dir
    code = main(
        ["explain", str(run), "--features", str(live[0]), "--backend", "openai",
         "--base-url", llm.base_url, "--model", "no-such-model"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "model: got 'no-such-model'; the LLM server" in err and llm.model in err
