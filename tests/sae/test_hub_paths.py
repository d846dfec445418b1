"""An hf: spec's path stays inside the repository's snapshot: '..' is refused before any download."""

from __future__ import annotations

import pytest

from saescope.errors import SaescopeError
from saescope.sae import load_sae


@pytest.mark.parametrize(
    "spec",
    ["hf:org/name/../../../etc", "hf:org/name/sae/../../x", "hf:org/../name", "hf:org/name/./x"],
)
def test_dot_segments_are_refused(spec, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SaescopeError, match=r"inside the repository, without '\.' or '\.\.'"):
        load_sae(spec)
