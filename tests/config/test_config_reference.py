"""docs/config.md is what the config schema generates today: the reference cannot go stale."""

from __future__ import annotations

from saescope.cli.config_docs import reference
from tests.paths import REPO


def test_the_config_reference_is_current():
    written = (REPO / "docs" / "config.md").read_text()
    assert written == reference().rstrip("\n") + "\n", (
        "docs/config.md is stale: run `saescope config-docs all > docs/config.md`"
    )
