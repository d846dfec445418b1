"""Screenshots of the viewer's pages in the browser tests: build/screenshots/viewer-*.png
(gitignored). Look at them."""

from __future__ import annotations

from tests.paths import SCREENSHOTS


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"viewer-{name}.png"), full_page=True)
