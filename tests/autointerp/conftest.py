"""Auto-interp fixtures: a real feature store, a real `transformers serve` OpenAI-compatible
server on 127.0.0.1 (behind a counting proxy), the in-process backend on the bundled model.

The server test fails (never skips) when the server cannot be started.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.autointerp import llm_server
from tests.store import store_data


@pytest.fixture(scope="session")
def analysis():
    """A constructed analysis with the contract's every field (tests/store/store_data.py):
    feature 3 fires on " Paris", 5 on " London"; short windows keep prompts small."""
    return store_data.make_analysis(d_sae=16, n_top=6, n_quantile=4, n_inactive=3, window=8)


@pytest.fixture(scope="session")
def store_path(analysis, tmp_path_factory) -> Path:
    from saescope.store import open_store

    path = tmp_path_factory.mktemp("autointerp") / "features.db"
    with open_store(path) as store:
        store.write_analysis(analysis)
    return path


@pytest.fixture(scope="session")
def llm(smollm2_tokenizer, smollm2):
    """A `transformers serve` of the bundled SmolLM2 behind a counting proxy (LLMServer)."""
    try:
        server = llm_server.start()
    except RuntimeError as err:
        pytest.fail(str(err), pytrace=False)
    yield server
    server.stop()
