"""`saescope serve` as a user runs it: a real process serving the run's store on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from tests.ports import free_port
from tests.server.viewer_run import SAE_ID


def test_serve_cli_serves_the_store(viewer_run_dir):
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "saescope.cli",
            "serve",
            str(viewer_run_dir),
            "--port",
            str(port),
            "--no-live",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                saes = httpx.get(f"http://127.0.0.1:{port}/api/saes", timeout=5).json()
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "saescope serve did not answer within 60 s"
                time.sleep(0.3)
        assert [s["sae_id"] for s in saes] == [SAE_ID] and saes[0]["live"] is False
        live = httpx.post(
            f"http://127.0.0.1:{port}/api/saes/{SAE_ID}/activations", json={"text": "a"}
        )
        assert live.status_code == 409 and "live inference is off" in live.json()["detail"]
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/" in out


def test_serve_cli_missing_source_is_one_clear_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "saescope.cli", "serve", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_serve_cli_on_all_addresses_warns_and_takes_a_token_and_hosts(viewer_run_dir):
    """--host 0.0.0.0: a loud warning; --token: every request needs it; --allowed-host: one
    more name answered, any other refused (DNS rebinding)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "saescope.cli", "serve", str(viewer_run_dir), "--no-live"]
        + ["--port", str(port), "--host", "0.0.0.0", "--allowed-host", "viewer.lab"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "SAESCOPE_TOKEN": "tok-123"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                refused = httpx.get(f"{base}/api/saes", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "saescope serve did not answer within 60 s"
                time.sleep(0.3)
        assert refused.status_code == 401
        token = {"x-saescope-token": "tok-123"}
        assert httpx.get(f"{base}/api/saes", headers=token).status_code == 200
        lab = httpx.get(f"{base}/api/saes", headers={**token, "host": f"viewer.lab:{port}"})
        assert lab.status_code == 200
        evil = httpx.get(f"{base}/api/saes", headers={**token, "host": "evil.example"})
        assert evil.status_code == 421
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "WARNING: the saescope viewer listens on 0.0.0.0" in out
    assert "?token=tok-123" in out
