"""Live inference off the server's process and event loop: requests that queue up share one
padded forward and each still gets its own answer; `saescope serve` runs the model in a
worker process of its own (lower CPU priority), whose loss the server survives."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from saescope.server.engine import LiveModels, OneFeature, TopFeatures, answer_batch
from saescope.server.sources import open_source
from tests.ports import free_port
from tests.server.viewer_run import SAE_ID, TEXTS, direct_acts

BASE = f"/api/saes/{SAE_ID}"
# a prompt the model continues for all of a steer's 64 tokens (scaled by 1: not steered)
LONG_PROMPT = "Counting from one to a hundred: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,"


def test_queued_requests_share_one_forward_and_keep_their_own_answers(viewer_run_dir, smollm2, sae):
    models = LiveModels(open_source(viewer_run_dir), model=smollm2)
    forwards = []
    handle = smollm2.hf_model.get_input_embeddings().register_forward_hook(
        lambda *_: forwards.append(1)
    )
    try:
        batch = [
            (0, TopFeatures(SAE_ID, TEXTS[0], 4)),
            (1, OneFeature(SAE_ID, 5, TEXTS[1])),
            (2, TopFeatures(SAE_ID, TEXTS[2], 4)),
            (3, OneFeature(SAE_ID, 7, "word " * 400)),
            (4, OneFeature(SAE_ID, 5, TEXTS[3])),
        ]
        replies = {req_id: (ok, payload) for req_id, ok, payload in answer_batch(models, batch)}
    finally:
        handle.remove()
    assert len(forwards) == 1  # four texts, one padded forward
    assert replies[3][0] is False and replies[3][1][0] == "TextTooLong"
    for req_id, text in ((1, TEXTS[1]), (4, TEXTS[3])):
        body = json.loads(replies[req_id][1])
        assert body["acts"] == pytest.approx(
            direct_acts(smollm2, sae, text)[:, 5].tolist(), rel=1e-4, abs=1e-4
        )
    for req_id, text in ((0, TEXTS[0]), (2, TEXTS[2])):
        body = json.loads(replies[req_id][1])
        acts = direct_acts(smollm2, sae, text)
        assert len(body["top_features"]) == acts.shape[0] == len(body["tokens"])
        first = [r["feature"] for r in body["top_features"][-1]]
        values, ids = acts[-1].topk(4)
        assert first == [i for i, v in zip(ids.tolist(), values.tolist(), strict=True) if v > 0]


def children(pid: int) -> list[int]:
    """Child processes, but multiprocessing's resource tracker."""
    found = [
        int(c)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for c in (task / "children").read_text().split()
    ]
    return [c for c in found if b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()]


def niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


@pytest.fixture(scope="module")
def served(viewer_run_dir):
    """`saescope serve` as a user runs it, live inference on (the worker process)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "saescope.cli", "serve", str(viewer_run_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            httpx.get(f"{base}/api/health", timeout=5).raise_for_status()
            break
        except httpx.TransportError:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "saescope serve did not answer within 300 s"
            time.sleep(0.5)
    yield base, proc
    proc.terminate()
    proc.communicate(timeout=30)


def test_serve_runs_the_model_in_a_lower_priority_worker_process(served, smollm2, sae):
    base, proc = served
    workers = children(proc.pid)
    assert len(workers) == 1 and niceness(workers[0]) >= niceness(proc.pid) + 5

    def ask(text: str) -> tuple[str, list[float]]:
        with httpx.Client(base_url=base, timeout=120) as http:
            return text, http.post(f"{BASE}/features/5/activations", json={"text": text}).json()[
                "acts"
            ]

    with ThreadPoolExecutor(len(TEXTS)) as pool:
        answers = list(pool.map(ask, TEXTS * 2))
    for text, acts in answers:
        assert acts == pytest.approx(
            direct_acts(smollm2, sae, text)[:, 5].tolist(), rel=1e-4, abs=1e-4
        )
    too_long = httpx.post(f"{base}{BASE}/activations", json={"text": "word " * 400}, timeout=60)
    assert too_long.status_code == 413 and "limit" in too_long.json()["detail"]


def test_the_server_outlives_its_worker(served):
    base, proc = served
    assert httpx.get(f"{base}{BASE}/features/2/panels", timeout=30).status_code == 200
    (worker,) = children(proc.pid)
    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        response = httpx.post(
            f"{base}{BASE}/activations", json={"text": "still there?"}, timeout=60
        )
        if response.status_code == 409 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert response.status_code == 409 and "worker exited" in response.json()["detail"]
    assert httpx.get(f"{base}{BASE}/features/2/panels", timeout=30).status_code == 200
    assert httpx.get(f"{base}/api/health", timeout=30).json()["ok"] is True


def test_a_dead_worker_is_restarted_and_health_says_so(served):
    base, proc = served
    deadline = time.monotonic() + 240  # the test before killed a worker: its successor loads
    while httpx.get(f"{base}/api/health", timeout=30).json()["live"]["state"] != "ok":
        assert time.monotonic() < deadline, "the worker was not restarted within 240 s"
        time.sleep(0.5)
    before = httpx.get(f"{base}/api/health", timeout=30).json()["live"]["restarts"]
    (worker,) = children(proc.pid)
    os.kill(worker, signal.SIGKILL)
    states = []
    deadline = time.monotonic() + 240
    while True:
        live = httpx.get(f"{base}/api/health", timeout=30).json()["live"]
        states.append(live["state"])
        if live["state"] == "ok" and live["restarts"] > before:
            break
        assert time.monotonic() < deadline, states[-5:]
        time.sleep(0.2)
    assert "restarting" in states and live["last_exit"] == -signal.SIGKILL
    answer = httpx.post(f"{base}{BASE}/activations", json={"text": "back again"}, timeout=120)
    assert answer.status_code == 200 and answer.json()["tokens"]
    (new_worker,) = children(proc.pid)
    assert new_worker != worker


def test_requests_cancelled_while_queued_are_dropped_however_long_the_queue(
    viewer_run_dir, smollm2
):
    """20 steers queued, then their cancels (their clients left): none of them runs, and the
    activation request behind them is answered."""
    import queue

    from saescope.server.engine import Cancel, Steer, serve_requests

    models = LiveModels(open_source(viewer_run_dir), model=smollm2)
    inbox: queue.Queue = queue.Queue()
    for req_id in range(20):
        inbox.put((req_id, Steer(SAE_ID, "The cat", 1, "clamp", 5.0, 64)))
    for req_id in range(20):
        inbox.put((-1, Cancel(req_id)))
    inbox.put((20, TopFeatures(SAE_ID, "still answered", 3)))
    inbox.put(None)
    replies = []
    start = time.perf_counter()
    serve_requests(models, inbox, replies.append)
    assert [(req_id, ok) for req_id, ok, _ in replies] == [(20, True)]
    assert time.perf_counter() - start < 10


def test_a_job_stops_at_its_deadline_and_one_already_past_it_does_not_run(viewer_run_dir, smollm2):
    """Three long steers sent with a 1 s limit, the first held up at its 10th step until
    that has passed: it stops there, the two queued behind it are answered without running,
    and the activation request after them (no limit) is answered."""
    import queue

    from saescope.server.engine import Steer, serve_requests, stamped

    models = LiveModels(open_source(viewer_run_dir), model=smollm2)
    steer = Steer(SAE_ID, LONG_PROMPT, 1, "scale", 1.0, 64)
    steps: list[int] = []
    held_until: list[float] = []

    def step(*_) -> None:
        steps.append(1)
        if len(steps) == 10 and held_until:  # a slow step: the deadline passes during it
            time.sleep(max(0.0, held_until[0] - time.monotonic()) + 0.05)

    handle = smollm2.hf_model.get_input_embeddings().register_forward_hook(step)
    try:
        ((_, ok, _),) = answer_batch(models, [(0, steer)])
        whole_steps = len(steps)
        assert ok and whole_steps > 30
        steps.clear()
        inbox: queue.Queue = queue.Queue()
        for req_id in range(3):
            inbox.put(stamped((req_id, steer, 1.0)))
        held_until.append(inbox.queue[0][2].at)
        inbox.put(stamped((3, TopFeatures(SAE_ID, "still answered", 3), None)))
        replies = []
        loop = threading.Thread(target=serve_requests, args=(models, inbox, replies.append))
        loop.start()
        start = time.monotonic()
        while len(replies) < 4 and time.monotonic() - start < 300:
            time.sleep(0.01)
        inbox.put(None)
        loop.join()
    finally:
        handle.remove()
    assert [(req_id, ok) for req_id, ok, _ in replies] == [
        (0, False),
        (1, False),
        (2, False),
        (3, True),
    ]
    assert {payload[0] for _, _, payload in replies[:3]} == {"TimeLimitExceeded"}
    assert "ran past its time limit of 1 s" in replies[0][2][1]
    assert all("waited past its time limit" in payload[1] for _, _, payload in replies[1:3])
    assert len(steps) <= 11  # 10 steps at most, and the activation request's forward


def test_a_batch_holds_one_forwards_acts_at_a_time(viewer_run_dir, smollm2):
    """16 activation requests of ~250 tokens for a 65,536-feature SAE: each forward's texts are
    answered before the next forward runs, so the peak stays near one forward's dense acts
    (MAX_DENSE_ELEMENTS) instead of the whole batch's (four times that)."""
    import torch

    from saescope.sae import SAEConfig, build_sae
    from saescope.server.engine import MAX_DENSE_ELEMENTS
    from tests.inference.test_prompt_budget import peak_growth
    from tests.server.viewer_run import HOOK

    d_sae = 65_536
    sae = build_sae(
        SAEConfig(architecture="topk", d_in=smollm2.d_model, d_sae=d_sae, k=8, hook_name=HOOK)
    ).eval()
    with torch.no_grad():
        sae.W_enc.normal_(generator=torch.Generator().manual_seed(0))
    models = LiveModels(open_source(viewer_run_dir), model=smollm2, saes={SAE_ID: sae})
    text = "The committee met on Tuesday to discuss the harbour's new budget. " * 19
    tokens = models.tokens(smollm2, text).shape[1]
    batch = [(i, OneFeature(SAE_ID, i, text)) for i in range(16)]
    answer_batch(models, batch[:1])  # first-call costs out of the measurement
    one_forward_mib = MAX_DENSE_ELEMENTS * 4 / 2**20
    whole_batch_mib = len(batch) * tokens * d_sae * 4 / 2**20
    assert whole_batch_mib > 3.5 * one_forward_mib
    replies, growth = peak_growth(lambda: answer_batch(models, batch))
    assert [ok for _, ok, _ in replies] == [True] * 16
    assert growth < 2 * one_forward_mib, (growth, one_forward_mib, whole_batch_mib)


def run_apart(coroutine: Any) -> Any:
    """asyncio.run in a thread of its own: a browser test's Playwright keeps an event loop
    running in the main thread for the rest of the session."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_a_worker_stuck_past_the_limit_and_its_grace_is_killed_and_restarted(viewer_run_dir):
    """A prompt page's forward through all 30 layers cannot stop part-way: with a limit and a
    grace shorter than that forward, the server answers 503, kills the worker and starts a
    new one, which answers the next request."""
    from saescope.server.engine import PromptPage
    from saescope.server.worker import LiveTimeout, ProcessEngine

    engine = ProcessEngine(open_source(viewer_run_dir))
    try:
        worker = engine._process.pid
        engine.timeout_s, engine.grace_s = 0.2, 0.2
        with pytest.raises(LiveTimeout, match="restarted"):
            run_apart(engine.run(PromptPage(SAE_ID, "word " * 250, None, 10)))
        engine.timeout_s = 300
        deadline = time.monotonic() + 300
        while engine.health()["state"] != "ok" or engine.health()["restarts"] < 1:
            assert time.monotonic() < deadline, engine.health()
            time.sleep(0.2)
        assert engine.health()["last_exit"] == -signal.SIGKILL
        answer = json.loads(run_apart(engine.run(TopFeatures(SAE_ID, "back again", 3))))
        assert answer["tokens"] and engine._process.pid != worker
    finally:
        engine.close()
