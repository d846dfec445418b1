"""Viewer fixtures: one real run (SAE + analysis + store) per session, and the app on it with
the real SmolLM2 loaded for the live endpoints."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from tests.server.trained_run import build_trained_run
from tests.server.viewer_run import build_run

LOCAL = "http://127.0.0.1"  # a Host the viewer answers (the default: loopback names only)


@pytest.fixture(scope="session")
def viewer_run_dir(smollm2, tmp_path_factory):
    return build_run(smollm2, tmp_path_factory.mktemp("viewer") / "run")


@pytest.fixture(scope="session")
def sae(viewer_run_dir):
    """The viewer run's SAE, loaded here, for computing what the server should answer."""
    from saescope.sae import load_sae

    return load_sae(viewer_run_dir / "sae")


@pytest.fixture(scope="session")
def app(viewer_run_dir, smollm2):
    from saescope.server import create_app

    return create_app(viewer_run_dir, model=smollm2)


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app, base_url=LOCAL, raise_server_exceptions=False) as test_client:
        yield test_client


@contextmanager
def serving(app):
    """The app under a real uvicorn server on 127.0.0.1 (a free port); yields its base URL."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the viewer did not start within 30 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(app):
    """The app under a real uvicorn server on 127.0.0.1, for the session."""
    with serving(app) as url:
        yield url


@pytest.fixture(scope="session")
def trained_run_dir(smollm2, tmp_path_factory):
    """A run made by the real harvest, trainer and analysis (tests/server/trained_run.py)."""
    return build_trained_run(smollm2, tmp_path_factory.mktemp("trained"))


@pytest.fixture(scope="session")
def trained_server(trained_run_dir):
    """The viewer on the trained run, store only (the map reads the SAE's weights itself)."""
    from saescope.server import create_app

    with serving(create_app(trained_run_dir, live=False)) as url:
        yield url
