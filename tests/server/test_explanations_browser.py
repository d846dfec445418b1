"""Explanations where users look, in real headless Chromium on the built viewer (issue 19): a
feature page opens with its label, explanation and scores (the other explanations folded
away), the browser sorts and filters by the interp scores and shows labels, the search box
finds explanation words, the overview draws each score's histogram, the map names a point on
hover, and an explanation written while the viewer runs shows on the next visit.
Screenshots: build/screenshots/viewer-explained-*.png."""

from __future__ import annotations

import shutil
import time

import pytest

from saescope.server import create_app
from saescope.server.app import default_web_dir
from saescope.server.cache import CHECK_WRITES_EVERY_S
from saescope.store import open_store
from tests.server.conftest import serving
from tests.server.explained import EXPLAINER, write_explanations
from tests.server.screens import shot, watched_page
from tests.server.viewer_run import SAE_ID

SAE_PATH = SAE_ID.replace("/", "%2F")


@pytest.fixture(scope="module")
def explained(viewer_run_dir, tmp_path_factory):
    """(base URL, run directory, what was written): the viewer, store only, on a copy of the
    viewer run with explanations."""
    if default_web_dir() is None:
        pytest.fail("the viewer is not built: cd web && npm ci && npm run build", pytrace=False)
    run = tmp_path_factory.mktemp("explained-ui") / "run"
    shutil.copytree(viewer_run_dir, run)
    with open_store(run / "features.db", create=False) as store:
        written = write_explanations(store, SAE_ID)
    with serving(create_app(run, live=False, warm=False)) as url:
        yield url, run, written


@pytest.fixture
def page(browser):
    page = watched_page(browser)
    yield page
    page.close()


def test_feature_page_opens_with_its_explanation_and_scores(page, explained):
    base, _, written = explained
    page.goto(f"{base}/#/sae/{SAE_PATH}/feature/3")
    panel = page.locator(".sc-feature [data-panel=explanation]")
    panel.wait_for()
    # it comes first, above the feature table
    first = page.locator(".sc-feature .sc-panels > section").first
    assert first.get_attribute("data-panel") == "explanation"
    assert panel.locator(".sc-label").first.inner_text() == written.labels[3]
    assert panel.locator(".sc-explanation").inner_text() == written.explanations[3]
    for scorer, value in written.scores[3].items():
        chip = panel.locator(f".sc-score[data-scorer={scorer}]").first
        assert chip.locator("b").inner_text() == f"{value:g}"
        assert EXPLAINER.model in chip.get_attribute("title")
    assert EXPLAINER.model in panel.locator(".sc-explainer").first.inner_text()
    others = panel.locator("details.sc-other-explanations")
    assert not others.get_attribute("open") and not others.locator("li").first.is_visible()
    others.locator("summary").click()
    assert others.locator("li").first.is_visible()
    assert written.older[3] in others.inner_text()
    shot(page, "explained-feature")

    page.goto(f"{base}/#/sae/{SAE_PATH}/feature/4")
    page.wait_for_selector(".sc-feature[data-feature='4'] [data-panel=explanation]")
    assert page.locator("[data-panel=explanation]").inner_text() == "No explanation yet."
    assert page.errors == []


def test_browser_sorts_filters_and_searches_by_explanations(page, explained):
    base, _, written = explained
    page.goto(f"{base}/#/sae/{SAE_PATH}/features")
    page.wait_for_selector("#sv-features tbody tr")
    for scorer in ("detection", "fuzzing", "simulation"):
        assert page.locator(f"[data-sort={scorer}]").count() == 1, scorer
    page.click("[data-sort=detection]")
    page.wait_for_selector("th[aria-sort=descending] [data-sort=detection]")
    rows = page.locator("#sv-features tbody tr")
    order = sorted(written.scores, key=lambda f: written.scores[f]["detection"], reverse=True)
    assert [int(r) for r in rows.evaluate_all("els => els.map(e => e.dataset.feature)")] == order
    assert page.locator("#sv-count").inner_text() == "1–3 of 3 (features with a detection value)"
    labels = page.locator("#sv-features td[data-column=label]").all_inner_texts()
    assert labels == [written.labels.get(f, "") for f in order]
    shot(page, "explained-browser")

    page.select_option("#sv-filter-by", "simulation")
    page.fill("#sv-filter-low", "0.3")
    page.click("#sv-filter button")
    page.wait_for_function("document.querySelectorAll('#sv-features tbody tr').length === 2")
    assert "with a detection and simulation value" in page.locator("#sv-count").inner_text()
    shown = rows.evaluate_all("els => els.map(e => Number(e.dataset.feature))")
    assert sorted(shown) == sorted(
        f for f in written.scores if written.scores[f]["simulation"] >= 0.3
    )

    page.fill("#sv-search", "full stops")
    page.locator("#sv-search").press("Enter")
    page.wait_for_selector("#sv-search-results tbody tr")
    hits = page.locator("#sv-search-results tbody tr")
    assert "#9" in hits.first.inner_text() and written.labels[9] in hits.first.inner_text()
    shot(page, "explained-search")
    assert page.errors == []


def test_overview_draws_each_interp_score_and_map_names_points(page, explained):
    base, _, written = explained
    page.goto(f"{base}/#/sae/{SAE_PATH}/overview")
    panel = page.locator("[data-panel=interp]")
    panel.locator("svg").first.wait_for()
    assert f"{len(written.explanations)} of 64 features explained" in panel.inner_text()
    for scorer in ("detection", "fuzzing", "simulation"):
        block = panel.locator(f"[data-interp={scorer}]")
        bars = block.locator("rect").evaluate_all("els => els.map(e => Number(e.dataset.count))")
        assert sum(bars) == len(written.scores)
        mean = sum(v[scorer] for v in written.scores.values()) / len(written.scores)
        assert f"mean {float(f'{mean:.3g}'):g}" in block.inner_text()
    shot(page, "explained-overview")

    page.goto(f"{base}/#/sae/{SAE_PATH}/map")
    page.wait_for_selector("svg.sv-map circle", timeout=60_000)
    named = page.locator("svg.sv-map circle.sv-named")
    assert sorted(
        int(f) for f in named.evaluate_all("els => els.map(e => e.dataset.feature)")
    ) == sorted(written.explanations)
    page.locator("svg.sv-map circle[data-feature='9']").hover(force=True)
    assert written.labels[9] in page.locator("#sv-map-hover").inner_text()
    page.locator("svg.sv-map a").nth(5).focus()
    assert written.explanations[5][:20] in page.locator("#sv-map-hover").inner_text()
    shot(page, "explained-map")
    assert page.errors == []


def test_an_explanation_set_while_serving_shows_on_the_page_and_in_the_list(page, explained):
    base, run, _ = explained
    page.goto(f"{base}/#/sae/{SAE_PATH}/feature/12")
    page.wait_for_selector(".sc-feature[data-feature='12'] .sc-unexplained")
    with open_store(run / "features.db", create=False) as store:
        store.set_explanation(SAE_ID, 12, "words written by hand while serving")
    time.sleep(CHECK_WRITES_EVERY_S + 0.3)
    page.reload()
    page.wait_for_selector(".sc-feature[data-feature='12'] .sc-explanation")
    panel = page.locator("[data-panel=explanation]")
    assert panel.locator(".sc-explanation").inner_text() == "words written by hand while serving"
    assert "set by hand" in panel.locator(".sc-explainer").inner_text()
    page.goto(f"{base}/#/sae/{SAE_PATH}/features?sort=feature&desc=0&offset=0&q=&range=")
    page.wait_for_selector("#sv-features tr[data-feature='12']")
    row = page.locator("#sv-features tr[data-feature='12'] td[data-column=explanation]")
    assert row.inner_text() == "words written by hand while serving"
    assert page.errors == []
