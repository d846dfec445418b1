"""File sizes for 100 and 1,000 features with the analysis pass's default example counts, and
the 1,000-feature file opened in Chromium (slow: building the store takes minutes)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from saescope.dashboards import write_dashboard
from saescope.store import open_store


@pytest.mark.slow
def test_sizes_for_100_and_1000_features(tmp_path, watch, constructed_analyses):
    analysis = constructed_analyses.make_analysis(
        sae_id="constructed/topk-1000",
        d_sae=1000,
        n_top=20,
        n_quantile=50,
        n_inactive=3,
        window=24,
        neurons=True,
    )
    analysis.sae_info["analysis"] = {"quantile_intervals": 2}
    with open_store(tmp_path / "features.db") as store:
        store.write_analysis(analysis)
        sizes = {}
        for n in (100, 1000):
            start = time.perf_counter()
            out = write_dashboard(store, None, list(range(n)), tmp_path / f"d{n}.html")
            sizes[n] = {
                "bytes": out.stat().st_size,
                "write_s": round(time.perf_counter() - start, 1),
            }
    report = Path(__file__).resolve().parents[2] / "build" / "dashboard_sizes.json"
    report.parent.mkdir(exist_ok=True)
    report.write_text(json.dumps(sizes, indent=2))
    print(sizes)
    assert sizes[1000]["bytes"] < 15 * 2**20
    start = time.perf_counter()
    watch.open(tmp_path / "d1000.html")
    watch.page.wait_for_selector("article.sc-feature")
    print(f"1,000 features open in {time.perf_counter() - start:.1f} s")
    watch.page.select_option("#sc-select", "998")
    assert watch.page.locator("article.sc-feature").get_attribute("data-feature") == "998"
    watch.screenshot("features_1000")
    watch.check_clean()
