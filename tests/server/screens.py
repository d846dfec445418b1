"""The browser tests' pages: one that records console errors and page errors, and screenshots
of the viewer's pages in build/screenshots/viewer-*.png (gitignored). Look at them."""

from __future__ import annotations

from tests.paths import SCREENSHOTS


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"viewer-{name}.png"), full_page=True)


def watched_page(browser):
    """A new page whose console errors and uncaught page errors collect in `page.errors`."""
    page = browser.new_page()
    page.errors = []
    page.on(
        "console",
        lambda m: page.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: page.errors.append(f"page error: {e}"))
    return page
