"""Session-wide fixtures: the real bundled SmolLM2 and its tokenizer, its layer-6 activations, a real
PostgreSQL server, Chromium."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

# Tests never reach the Hugging Face hub; set before `datasets` is first imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

# Shared helpers that assert: rewritten like test modules, so their failures show the values.
pytest.register_assert_rewrite("tests.checks", "tests.store.store_data")


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


LAYER6 = "blocks.6.hook_resid_post"


@pytest.fixture(scope="session")
def layer6_cache(smollm2, tmp_path_factory):
    """A harvested activation cache (shards of 64 contexts, so several shards): 20,480 tokens of blocks.6.hook_resid_post from the built-in corpus."""
    from saescope.activations import HarvestConfig, harvest
    from saescope.corpus import CorpusConfig

    out = tmp_path_factory.mktemp("acts") / "layer6"
    cfg = HarvestConfig(
        out=str(out),
        hooks=[LAYER6],
        corpus=CorpusConfig(context_length=128),
        n_tokens=20_480,
        batch_size=16,
    )
    harvest(cfg, model=smollm2, progress=False)
    return out


@pytest.fixture(scope="session")
def layer6_acts(layer6_cache):
    """The first 4,096 normalised activations of the cache: [4096, 576] float32."""
    from saescope.activations import ActivationStore

    store = ActivationStore.from_cache(layer6_cache, batch_size=4096, buffer_tokens=8192)
    return next(iter(store))[LAYER6]


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server on 127.0.0.1 for the session (tests/postgres_server.py);
    fails, never skips, when the binaries are missing: run scripts/setup.sh."""
    from tests.postgres_server import start_server

    try:
        server = start_server()
    except RuntimeError as err:
        pytest.fail(str(err), pytrace=False)
    yield server
    server.stop()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright, with a fresh profile, shared by every browser test
    (one sync Playwright per thread); fails, never skips, without them: run scripts/setup.sh."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: run scripts/setup.sh", pytrace=False)
    if shutil.which(CHROMIUM) is None:
        pytest.fail(
            f"{CHROMIUM} is missing: run scripts/setup.sh (it installs Debian's chromium)",
            pytrace=False,
        )
    profile = tempfile.mkdtemp(prefix="saescope-chromium-")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)
