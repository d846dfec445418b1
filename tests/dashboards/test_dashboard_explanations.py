"""A static dashboard shows each feature's explanation at the top (issue 19), in real headless
Chromium: the label, the current explanation with its interp scores and explainer, the older
explanations folded away, the label in the feature selector, a quiet line for a feature with
none, and still no network request. Screenshot: build/screenshots/feature_explained.png."""

from __future__ import annotations

import shutil

import pytest

from saescope.dashboards import write_dashboard
from saescope.store import open_store
from tests.server.explained import EXPLAINER, write_explanations


@pytest.fixture(scope="module")
def explained_html(real_run, tmp_path_factory):
    """(dashboard of features 3, 4 and 9, what was written) on a copy of the real run."""
    run_dir, sae_id = real_run
    run = tmp_path_factory.mktemp("explained-dash") / "run"
    shutil.copytree(run_dir, run)
    with open_store(run / "features.db", create=False) as store:
        written = write_explanations(store, sae_id)
    html = write_dashboard(run, sae_id, [3, 4, 9], run / "explained.html")
    return html, written


def test_dashboard_shows_the_explanation_scores_and_the_others(watch, explained_html):
    html, written = explained_html
    watch.open(html)
    page = watch.page
    page.select_option("#sc-select", "3")
    panel = page.locator("article.sc-feature [data-panel=explanation]")
    assert page.locator(".sc-panels > section").first.get_attribute("data-panel") == "explanation"
    assert panel.locator(".sc-label").first.inner_text() == written.labels[3]
    assert panel.locator(".sc-explanation").inner_text() == written.explanations[3]
    chips = {
        chip.get_attribute("data-scorer"): chip.locator("b").inner_text()
        for chip in panel.locator(":scope > .sc-scores .sc-score").all()
    }
    assert chips == {scorer: f"{value:g}" for scorer, value in written.scores[3].items()}
    assert EXPLAINER.model in panel.locator(".sc-explainer").first.inner_text()
    panel.locator("details summary").click()
    assert written.older[3] in panel.locator("details li").first.inner_text()
    watch.screenshot("feature_explained")

    options = page.locator("#sc-select option").all_inner_texts()
    assert written.labels[3] in options[0] and written.labels[9] in options[2]
    page.select_option("#sc-select", "4")
    assert panel.inner_text() == "No explanation yet."
    watch.check_clean()
