"""The viewer against bad input, overload and faults (issue 18): every malformed request is a
short 4xx with no traceback logged, bodies are capped before parsing, only the started-for
hosts (and, when set, the token holder) are answered, no server path leaks, abandoned and
excess live requests cost nothing, and cached pages follow the store's writes."""

from __future__ import annotations

import logging
import select
import socket
import struct
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from saescope.server import create_app
from saescope.server.app import page_key
from saescope.server.cache import CHECK_WRITES_EVERY_S, entry_size
from saescope.server.feature_map import FeatureMaps
from saescope.server.guard import hosts_for
from saescope.server.worker import JOB_TIMEOUT_S
from saescope.store import open_store
from tests.server.viewer_run import SAE_ID

BASE = f"/api/saes/{SAE_ID}"
LOCAL = "http://127.0.0.1"


@pytest.fixture
def logged(caplog):
    """Every log record of the request(s) made in the test (WARNING and up)."""
    caplog.set_level(logging.WARNING)
    return caplog


def assert_quiet(logged) -> None:
    noisy = [r for r in logged.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not noisy, [r.getMessage() for r in noisy]


BAD_GETS = [
    f"{BASE}/features/99999999999999999",
    f"{BASE}/features/{'9' * 30}",
    f"{BASE}/features/{'9' * 5000}",  # int() of 5,000 digits raises: the fast path must not try
    f"{BASE}/features/{'9' * 5000}/panels",
    f"{BASE}/features/-{'9' * 40}",
    f"{BASE}/features/1e9",
    f"{BASE}/features?offset=9999999999999999999999",
    f"{BASE}/features?offset={'9' * 5000}",
    f"{BASE}/features?limit=abc",
    f"{BASE}/features?min_density=nan",
    f"{BASE}/features?sort_by=%00",
    "/api/search?q=abc%00def",
    "/api/search?q=%00",
    f"/api/search?q=x&sae_id={'%00' * 10}",
    f"/api/search?q={'a' * 10_000}",
    "/api/saes/%00/summary",
    f"/api/saes/{'x' * 5000}/features/1",
]


@pytest.mark.parametrize("path", BAD_GETS)
def test_malformed_reads_are_short_4xx_without_traceback(client, logged, path):
    response = client.get(path)
    assert 400 <= response.status_code < 500, (path, response.status_code, response.text[:300])
    assert len(response.content) < 2000 and "detail" in response.json()
    assert_quiet(logged)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{bad", "application/json", 422),
        (b'{"text": "hi"', "application/json", 422),
        (b"[1, 2]", "application/json", 422),
        (b'{"text": 5}', "application/json", 422),
        (b'{"text": "hi", "k": ' + b"9" * 5000 + b"}", "application/json", 400),
        (b"\xff\xfe\x00", "application/json", 400),
        (b'{"text": "hi"}', "text/plain", 415),  # a "simple" cross-site request: no JSON here
        (b'{"text": "hi"}', "", 415),
        (b'{"text": "hi"}', "application/x-www-form-urlencoded", 415),
    ],
)
def test_malformed_bodies_are_4xx(client, logged, body, content_type, status):
    headers = {"content-type": content_type} if content_type else {}
    response = client.post(f"{BASE}/activations", content=body, headers=headers)
    assert response.status_code == status, response.text[:300]
    assert_quiet(logged)


def test_steer_with_a_huge_feature_id_is_4xx(client, logged):
    response = client.post(f"{BASE}/steer", json={"prompt": "a", "feature": 10**30})
    assert response.status_code == 422
    assert_quiet(logged)


def test_fast_path_takes_only_short_ids():
    assert page_key(f"{BASE}/features/12") == ("feature", SAE_ID, 12)
    assert page_key(f"{BASE}/features/{'9' * 5000}") is None


# --- body size ---------------------------------------------------------------------------


def raw_connection(live_server: str) -> socket.socket:
    host, port = live_server.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def test_an_oversize_body_is_refused_before_it_is_read(live_server):
    """A 200 MB body declared by Content-Length: 413 at once, without waiting for the bytes."""
    with raw_connection(live_server) as sock:
        start = time.perf_counter()
        sock.sendall(
            f"POST {BASE}/activations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {200 * 2**20}\r\n\r\n".encode()
            + b'{"text": "'
        )
        status = sock.recv(64)
        seconds = time.perf_counter() - start
    assert b" 413 " in status and seconds < 1.0


def test_a_streamed_body_is_cut_at_the_limit(live_server):
    """A chunked body (no Content-Length): 413 once the limit is passed, while the client is
    still sending (64 MB if nobody stopped it)."""
    chunk = b" " * 65536
    status, sent = b"", 0
    with raw_connection(live_server) as sock:
        sock.sendall(
            f"POST {BASE}/activations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        while sent < 1000:
            try:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            except OSError:  # the server closed its side after answering
                break
            sent += 1
            if select.select([sock], [], [], 0.02)[0]:
                break
        status = sock.recv(64)
    assert b" 413 " in status and sent < 100, (status, sent)


def test_a_text_over_the_character_limit_is_refused_by_validation(client):
    response = client.post(f"{BASE}/activations", json={"text": "x" * 4001})
    assert response.status_code == 413 and "the limit is 4000 characters" in response.text


# --- hosts and token -----------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example", "localhost.:80"])
def test_only_the_started_for_hosts_are_answered(client, host):
    response = client.get("/api/health", headers={"host": host})
    assert response.status_code == 421 and "--allowed-host" in response.json()["detail"]
    for good in ("127.0.0.1:8000", "localhost", "[::1]:9"):
        assert client.get("/api/health", headers={"host": good}).status_code == 200


def test_hosts_for_an_address_and_extra_names():
    assert hosts_for("0.0.0.0", ["viewer.lab"]) == {
        "127.0.0.1",
        "localhost",
        "::1",
        "[::1]",
        "viewer.lab",
    }
    assert "10.0.0.5" in hosts_for("10.0.0.5")
    assert hosts_for("127.0.0.1", ["*"]) is None


def test_with_a_token_every_request_needs_it_and_a_first_visit_sets_the_cookie(viewer_run_dir):
    app = create_app(viewer_run_dir, live=False, warm=False, token="s3cret-token")
    with TestClient(app, base_url=LOCAL, follow_redirects=False) as client:
        assert client.get("/api/health").status_code == 401
        assert client.get(f"{BASE}/features/1").status_code == 401  # the fast path too
        assert client.get("/api/health", headers={"x-saescope-token": "wrong"}).status_code == 401
        assert (
            client.get("/api/health", headers={"x-saescope-token": "s3cret-token"}).status_code
            == 200
        )
        assert client.get("/api/health?token=s3cret-token").status_code == 401  # not in API URLs
        first = client.get("/?token=s3cret-token&x=1")
        assert first.status_code == 303 and first.headers["location"] == "/?x=1"
        assert "HttpOnly" in first.headers["set-cookie"]
        assert client.get("/api/health").status_code == 200  # the cookie, from now on
        assert client.get(f"{BASE}/features/1").status_code == 200
        assert client.get("/?token=stale").status_code != 303  # no wrong cookie over the good
        assert client.get("/api/health").status_code == 200


# --- no server paths -----------------------------------------------------------------------


def test_no_server_path_in_any_answer(client, viewer_run_dir):
    home = str(viewer_run_dir.parent)
    for path in [
        "/api/search?q=abc%00def",
        f"{BASE}/summary",
        "/api/saes",
        f"{BASE}/features/3",
        f"/api/saes/{quote(str(viewer_run_dir), safe='')}/summary",
    ]:
        response = client.get(path)
        assert home not in response.text, (path, response.text[:300])
    assert "path" not in client.get(f"{BASE}/summary").json()["info"]


# --- stale pages and the cache -------------------------------------------------------------


def test_a_new_explanation_shows_without_restart(viewer_run_dir):
    app = create_app(viewer_run_dir, live=False, warm=False)
    with TestClient(app, base_url=LOCAL) as client:
        before = client.get(f"{BASE}/features/7").json()
        assert client.get("/api/search", params={"q": "zebra crossing"}).json()["results"] == []
        with open_store(viewer_run_dir / "features.db", create=False) as store:
            store.set_explanation(SAE_ID, 7, "zebra crossings")
        try:
            time.sleep(CHECK_WRITES_EVERY_S + 0.2)
            after = client.get(f"{BASE}/features/7").json()
            assert after["explanation"] == "zebra crossings" != before.get("explanation")
            found = client.get("/api/search", params={"q": "  Zebra Crossing "}).json()
            assert [r["feature"] for r in found["results"]] == [7]
        finally:
            with open_store(viewer_run_dir / "features.db", create=False) as store:
                store.set_explanation(SAE_ID, 7, before.get("explanation"))


def test_search_entries_are_one_per_normalised_query(viewer_run_dir):
    app = create_app(viewer_run_dir, live=False, warm=False)
    with TestClient(app, base_url=LOCAL) as client:
        cache = app.state.cache
        client.get("/api/search", params={"q": "the"})
        held = len(cache)
        for q in ("The", "  the ", "THE"):
            client.get("/api/search", params={"q": q})
        assert len(cache) == held


def test_the_cache_counts_what_its_entries_hold(viewer_run_dir):
    app = create_app(viewer_run_dir, live=False, warm=False)
    with TestClient(app, base_url=LOCAL) as client:
        for f in range(10):
            client.get(f"{BASE}/features/{f}/panels")
        cache = app.state.cache
        bodies = list(cache._entries.items())
        assert cache.bytes == sum(entry_size(k, b) for k, b in bodies)
        assert cache.bytes > sum(sys.getsizeof(b) + sys.getsizeof(k) for k, b in bodies)


# --- the map and the curves ----------------------------------------------------------------


def wait_for(maps: FeatureMaps, *args) -> tuple[bool, bytes]:
    deadline = time.monotonic() + 30
    while (held := maps.get(*args)) is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return held


def test_a_map_with_nan_directions_is_drawn_and_a_failed_one_is_retried():
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(40, 8)).astype(np.float32)
    directions[3] = np.nan
    ok, body = wait_for(FeatureMaps(), "a", lambda: directions, lambda: np.full(40, np.nan))
    assert ok and b"NaN" not in body

    maps, calls = FeatureMaps(), []

    def flaky() -> np.ndarray:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("weights not there yet")
        return directions

    maps.RETRY_AFTER_S = 0.2
    ok, body = wait_for(maps, "b", flaky, lambda: np.zeros(40))
    assert not ok and b"not there yet" in body
    time.sleep(0.3)
    assert wait_for(maps, "b", flaky, lambda: np.zeros(40))[0] is True


def test_concurrent_first_curve_requests_all_get_the_png(trained_server):
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda _: httpx.get(f"{trained_server}/api/training.png", timeout=120), range(8)
            )
        )
    assert {a.status_code for a in answers} == {200}
    pngs = {a.content for a in answers}
    assert len(pngs) == 1
    png = pngs.pop()
    assert png.startswith(b"\x89PNG") and struct.unpack(">II", png[16:24])[0] > 100


# --- live requests under abuse -------------------------------------------------------------


def steer_body(tokens: int) -> dict:
    return {"prompt": "The weather today is", "feature": 1, "max_new_tokens": tokens}


def test_too_many_live_requests_from_one_client_are_429(live_server):
    answers: list[httpx.Response] = []

    def ask() -> None:
        answers.append(httpx.post(f"{live_server}{BASE}/steer", json=steer_body(32), timeout=300))

    threads = [threading.Thread(target=ask) for _ in range(14)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    busy = [a for a in answers if a.status_code == 429]
    assert busy and all(int(a.headers["retry-after"]) > 0 for a in busy)
    assert {a.status_code for a in answers} <= {200, 429}
    assert sum(a.status_code == 200 for a in answers) >= 8


def test_abandoned_live_requests_are_dropped(live_server):
    start = time.perf_counter()
    httpx.post(f"{live_server}{BASE}/steer", json=steer_body(48), timeout=300)
    one = time.perf_counter() - start
    for _ in range(4):  # each client gives up long before its answer
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{live_server}{BASE}/steer", json=steer_body(48), timeout=0.2)
    start = time.perf_counter()
    answer = httpx.post(f"{live_server}{BASE}/activations", json={"text": "hi"}, timeout=300)
    waited = time.perf_counter() - start
    assert answer.status_code == 200
    assert waited < 2.5 * one, (waited, one)  # not behind four abandoned steers
    health = httpx.get(f"{live_server}/api/health", timeout=30).json()
    assert health["live"]["state"] == "ok" and health["live"]["waiting"] == 0


def test_the_ui_works_behind_a_token(browser, viewer_run_dir):
    """The printed link's ?token= sets the cookie; the UI's own fetches then carry it."""
    from saescope.server.app import default_web_dir
    from tests.server.conftest import serving

    if default_web_dir() is None:
        pytest.fail("the viewer is not built: cd web && npm ci && npm run build", pytrace=False)
    app = create_app(viewer_run_dir, live=False, warm=False, token="ui-token")
    with serving(app) as url:
        page = browser.new_page()
        try:
            page.goto(url + "/")
            assert "access token" in page.content()  # no token, no page
            page.goto(url + "/?token=ui-token")
            page.wait_for_selector("[data-panel=density] svg")
            assert "token" not in page.url
            info = page.locator("[data-panel=sae-info]").inner_text()
            assert "blocks.6.hook_resid_post" in info
        finally:
            page.close()


def test_a_job_past_its_time_limit_is_stopped_and_the_next_is_served(live_server, app, smollm2):
    """A long steer under a 1 s limit, held up at its 10th step until that has passed: the
    client gets a 503 that says so, the generation stops there (no forward after the answer)
    and the next request is answered."""
    engine = app.state.engine
    body = {
        "prompt": "Counting from one to a hundred: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,",
        "feature": 1,
        "mode": "scale",
        "value": 1.0,
        "max_new_tokens": 64,
    }
    forwards: list[float] = []
    hold: list[float] = []

    def step(*_) -> None:
        forwards.append(time.monotonic())
        if len(forwards) == 10 and hold:  # a slow step: the limit passes during it
            time.sleep(max(0.0, hold[0] - time.monotonic()) + 0.05)

    handle = smollm2.hf_model.get_input_embeddings().register_forward_hook(step)
    try:
        whole = httpx.post(f"{live_server}{BASE}/steer", json=body, timeout=300)
        steps = len(forwards)
        assert whole.status_code == 200 and steps > 30
        engine.timeout_s, forwards[:] = 1.0, []
        try:
            hold.append(time.monotonic() + 1.0)
            answer = httpx.post(f"{live_server}{BASE}/steer", json=body, timeout=300)
            answered = time.monotonic()
        finally:
            engine.timeout_s = JOB_TIMEOUT_S
        assert answer.status_code == 503, answer.text
        assert "time limit of 1 s" in answer.json()["detail"]
        assert int(answer.headers["retry-after"]) > 0
        time.sleep(1.0)
        assert 0 < len(forwards) <= 10 and max(forwards) < answered
    finally:
        handle.remove()
    again = httpx.post(f"{live_server}{BASE}/activations", json={"text": "next"}, timeout=300)
    assert again.status_code == 200 and again.json()["tokens"]
