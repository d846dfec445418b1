"""The feature map's UMAP path on a trained 576-feature SAE (above the UMAP minimum): the API
returns a 2-D point for every feature, and the map page draws each as a link to its feature."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest

from saescope.server.feature_map import UMAP_MIN_FEATURES
from saescope.store import open_store
from tests.server.screens import shot
from tests.server.trained_run import D_SAE, SAE_ID


def fetch_map(base: str) -> dict:
    deadline = time.monotonic() + 600  # numba compiles UMAP on first use
    while True:
        response = httpx.get(f"{base}/api/saes/{SAE_ID}/map", timeout=30)
        if response.status_code != 202:
            assert response.status_code == 200, response.text
            return response.json()
        assert time.monotonic() < deadline, "the map was not ready within 600 s"
        time.sleep(0.5)


def test_map_api_is_a_umap_of_every_feature(trained_server, trained_run_dir):
    assert D_SAE >= UMAP_MIN_FEATURES
    body = fetch_map(trained_server)
    assert body["method"] == "umap"
    x, y = np.array(body["x"]), np.array(body["y"])
    assert len(x) == len(y) == D_SAE and np.isfinite(x).all() and np.isfinite(y).all()
    assert x.min() == 0 and x.max() == 1 and y.min() == 0 and y.max() == 1
    assert (
        len({(a, b) for a, b in zip(x.tolist(), y.tolist(), strict=True)}) > 0.9 * D_SAE
    )  # spread out
    with open_store(trained_run_dir / "features.db", create=False) as store:
        assert body["density"] == pytest.approx(store.densities(SAE_ID).tolist())


def test_map_page_draws_every_point_as_a_link(browser, trained_server):
    fetch_map(trained_server)
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{trained_server}/#/sae/{SAE_ID.replace('/', '%2F')}/map")
        page.wait_for_selector("svg.sv-map circle", timeout=60_000)
        assert page.locator("svg.sv-map circle").count() == D_SAE
        assert "UMAP" in page.locator("[data-page=map] h3").inner_text()
        shot(page, "map-umap")
        # the point drawn last is on top: in a dense UMAP layout another point can cover any earlier one
        point = page.locator("svg.sv-map a").last
        feature = point.locator("circle").get_attribute("data-feature")
        point.click()
        page.wait_for_selector(f".sc-feature[data-feature='{feature}']")
        assert errors == []
    finally:
        page.close()
