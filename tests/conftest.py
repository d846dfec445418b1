"""Session-wide fixtures: the real bundled SmolLM2 and its tokenizer, a real PostgreSQL server, Chromium."""

from __future__ import annotations

import os
import shutil
import tempfile

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


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright, with a fresh profile, shared by every browser test
    (one sync Playwright per thread); fails, never skips, without them: run scripts/setup.sh."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: run scripts/setup.sh", pytrace=False)
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh (it installs Debian's chromium)", pytrace=False)
    profile = tempfile.mkdtemp(prefix="saescope-chromium-")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                       args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)
