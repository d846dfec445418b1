"""Live inference off the server's process and event loop: requests that queue up share one
padded forward and each still gets its own answer; `saescope serve` runs the model in a
worker process of its own (lower CPU priority), whose loss the server survives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from saescope.server.engine import LiveModels, OneFeature, TopFeatures, answer_batch
from saescope.server.sources import open_source
from tests.ports import free_port
from tests.server.viewer_run import SAE_ID, TEXTS, direct_acts

BASE = f"/api/saes/{SAE_ID}"


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
