"""The page cache behind the viewer's feature pages: warmed at start with every panel page,
answered before routing with the same bytes the route makes, bounded in bytes, and never
stale after the SAE is re-analysed while serving."""

from __future__ import annotations

import shutil
import time

import pytest
from fastapi.testclient import TestClient

from saescope.server import create_app
from saescope.server.app import page_key
from saescope.server.cache import CHECK_WRITES_EVERY_S, panels_key, to_json
from saescope.store import open_store
from tests.server.viewer_run import D_SAE, SAE_ID

LOCAL = "http://127.0.0.1"  # a Host the viewer answers (the default: loopback names only)

BASE = f"/api/saes/{SAE_ID}"


def wait_warm(client: TestClient, timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        health = client.get("/api/health").json()
        if health["warming"]["finished"]:
            return health
        assert time.monotonic() < deadline, f"not warm within {timeout_s} s: {health}"
        time.sleep(0.2)


@pytest.fixture
def store_copy(viewer_run_dir, tmp_path):
    path = tmp_path / "features.db"
    shutil.copy(viewer_run_dir / "features.db", path)
    return path


def test_page_keys_of_feature_urls():
    assert page_key(f"{BASE}/features/12/panels") == ("panels", SAE_ID, 12)
    assert page_key(f"{BASE}/features/012") == ("feature", SAE_ID, 12)
    for other in (
        f"{BASE}/features",
        f"{BASE}/features/x/panels",
        f"{BASE}/features/-1",
        f"{BASE}/features/²",
        f"{BASE}/summary",
        "/api/search",
        "/index.html",
    ):
        assert page_key(other) is None


def test_warm_cache_holds_every_panel_page_with_the_routes_bytes(store_copy):
    app = create_app(store_copy, live=False)
    with TestClient(app, base_url=LOCAL) as client:
        health = wait_warm(client)
        assert health["warming"]["done"] == health["warming"]["total"] == D_SAE
        cache = app.state.cache
        assert all(cache.peek(panels_key(SAE_ID, f)) is not None for f in range(D_SAE))
        with open_store(store_copy, create=False) as store:
            fresh = cache.panels(SAE_ID, store.feature(SAE_ID, 9))
        served = client.get(f"{BASE}/features/9/panels")
        assert served.headers["content-type"] == "application/json"
        assert served.content == to_json(fresh)
        assert client.get(f"{BASE}/features/{D_SAE}/panels").status_code == 404  # never cached


def test_cache_stays_within_its_byte_budget(store_copy):
    app = create_app(store_copy, live=False, warm=False, cache_bytes=100_000)
    with TestClient(app, base_url=LOCAL) as client:
        pages = [client.get(f"{BASE}/features/{f}/panels") for f in range(D_SAE)]
        assert all(p.status_code == 200 for p in pages)
        assert app.state.cache.bytes <= 100_000 < sum(len(p.content) for p in pages)
        assert (
            client.get(f"{BASE}/features/0/panels").content == pages[0].content
        )  # read again: the same


def test_a_re_analysed_sae_is_never_served_from_the_old_pages(store_copy):
    app = create_app(store_copy, live=False)
    with TestClient(app, base_url=LOCAL) as client:
        wait_warm(client)
        before = client.get(f"{BASE}/features/3/panels").json()
        with open_store(store_copy, create=False) as store:
            analysis = store.load_analysis(SAE_ID)
            analysis.features.max_act[3] *= 2
            store.write_analysis(analysis)
        time.sleep(CHECK_WRITES_EVERY_S + 0.5)
        after = client.get(f"{BASE}/features/3/panels").json()
        assert after["features"][0]["max_act"] == pytest.approx(
            2 * before["features"][0]["max_act"], rel=1e-3
        )
