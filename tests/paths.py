"""Where the test suite finds its files: the repository, the SAE fixtures (ours and the shared
ones next to the checkout) and the gitignored build/ folder the browser tests write screenshots to."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUR_FIXTURES = REPO / "tests" / "fixtures"
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"
BUILD = REPO / "build"
SCREENSHOTS = BUILD / "screenshots"  # gitignored; look at them
