"""Session-wide fixtures: the real bundled SmolLM2-135M-Instruct model and its tokenizer."""

from __future__ import annotations

import os

import pytest

# Tests never reach the Hugging Face hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def smollm2():
    """The bundled SmolLM2-135M-Instruct as a HookedModel (fp32, CPU); builds the weight cache on first use."""
    from saescope.models import load_model

    return load_model("smollm2")


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    """The SmolLM2 tokenizer alone (no weights)."""
    from saescope.models import load_tokenizer

    return load_tokenizer("smollm2")


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server on 127.0.0.1 for the session (tests/postgres_server.py);
    fails, never skips, when the binaries are missing: run scripts/setup.sh."""
    from postgres_server import start_server

    try:
        server = start_server()
    except RuntimeError as err:
        pytest.fail(str(err), pytrace=False)
    yield server
    server.stop()
