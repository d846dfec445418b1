"""Screenshots of the viewer's pages in the browser tests: build/screenshots/viewer-*.png
(gitignored). Look at them."""

from __future__ import annotations

from pathlib import Path

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"viewer-{name}.png"), full_page=True)
