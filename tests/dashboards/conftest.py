"""Dashboard fixtures: a tiny real run (SmolLM2 + a TopK SAE + the analysis pass + a SQLite
store), a store of a larger constructed analysis, and a real headless Chromium.

The browser tests fail (never skip) when Chromium or playwright is missing: run scripts/setup.sh.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from saescope.dashboards import write_dashboard, write_prompt_dashboard
from tests.dashboards import real_run as real_run_module
from tests.dashboards.real_run import PROMPT
from tests.paths import SCREENSHOTS
from tests.store import store_data


@pytest.fixture(scope="session")
def constructed_analyses():
    """tests/store's builder of realistic constructed analyses (make_analysis)."""
    return store_data


@pytest.fixture(scope="session")
def real_run(smollm2, tmp_path_factory) -> tuple[Path, str]:
    """(run directory with sae/ and features.db, sae_id) of a real analysis (about 30 s)."""
    return real_run_module.make_run(smollm2, tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="session")
def constructed_store(tmp_path_factory) -> tuple[Path, str]:
    """(store file, sae_id) of a 120-feature constructed analysis with the analysis pass's
    default example counts (20 top, 10 intervals x 5, 24-token windows, hover tokens)."""
    from saescope.store import open_store

    analysis = store_data.make_analysis(
        sae_id="constructed/blocks.6.hook_resid_post/topk-120",
        d_sae=120,
        n_top=20,
        n_quantile=50,
        n_inactive=3,
        window=24,
        neurons=True,
    )
    analysis.sae_info["analysis"] = {"quantile_intervals": 2}  # store_data samples 2 intervals
    path = tmp_path_factory.mktemp("store") / "features.db"
    with open_store(path) as store:
        store.write_analysis(analysis)
    return path, analysis.sae_id


@pytest.fixture(scope="session")
def feature_html(real_run, tmp_path_factory) -> Path:
    """The real writer's feature dashboard of every feature of the real run."""
    run_dir, sae_id = real_run
    return write_dashboard(
        run_dir,
        sae_id,
        list(range(real_run_module.D_SAE)),
        tmp_path_factory.mktemp("html") / "features.html",
    )


@pytest.fixture(scope="session")
def prompt_html(real_run, smollm2, tmp_path_factory) -> Path:
    run_dir, sae_id = real_run
    return write_prompt_dashboard(
        run_dir, sae_id, PROMPT, tmp_path_factory.mktemp("html") / "prompt.html", model=smollm2
    )


class PageWatch:
    """A page with everything it logged and requested, for the no-errors / no-network checks."""

    def __init__(self, page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on(
            "console",
            lambda m: (
                self.errors.append(f"console.{m.type}: {m.text}")
                if m.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("request", lambda r: self.requests.append(r.url))

    def open(self, path: Path) -> None:
        self.url = path.resolve().as_uri()
        self.page.goto(self.url)
        self.page.wait_for_selector(".sc-header")

    def screenshot(self, name: str, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        out = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(out), full_page=full_page)
        return out

    def check_clean(self) -> None:
        assert self.errors == []
        # the file itself is the only request (a hash change makes none)
        assert {url.split("#")[0] for url in self.requests} == {self.url}


@pytest.fixture
def watch(browser):
    page = browser.new_page()
    yield PageWatch(page)
    page.close()
