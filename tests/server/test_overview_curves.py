"""The overview's training-curves panel, on a run made by the real trainer
(tests/server/trained_run.py): the API serves the run's metrics and curves, the page shows them."""

from __future__ import annotations

import json
import shutil

import httpx
from fastapi.testclient import TestClient

from saescope.server import create_app
from tests.server.screens import shot
from tests.server.trained_run import SAE_ID

LOCAL = "http://127.0.0.1"  # a Host the viewer answers (the default: loopback names only)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def train_rows(run_dir) -> list[dict]:
    rows = [
        json.loads(line)
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        if line.strip()
    ]
    return [r for r in rows if r["kind"] == "train"]


def test_training_api_serves_the_runs_metrics_and_curves(trained_run_dir, trained_server):
    summary = httpx.get(f"{trained_server}/api/saes/{SAE_ID}/summary").json()
    assert summary["has_training_curves"] is True
    records = httpx.get(f"{trained_server}/api/training").json()["records"]
    expected = train_rows(trained_run_dir)
    assert len(expected) >= 4 and [r["step"] for r in records] == [r["step"] for r in expected]
    assert [r["loss"] for r in records] == [r["loss"] for r in expected]
    png = httpx.get(f"{trained_server}/api/training.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content == (trained_run_dir / "training_curves.png").read_bytes()


def test_curves_are_drawn_from_metrics_when_the_png_is_missing(trained_run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(
        trained_run_dir, run, ignore=shutil.ignore_patterns("training_curves.png", "checkpoints")
    )
    with TestClient(create_app(run, live=False, warm=False), base_url=LOCAL) as client:
        assert client.get(f"/api/saes/{SAE_ID}/summary").json()["has_training_curves"] is True
        png = client.get("/api/training.png")
        assert (
            png.status_code == 200
            and png.content.startswith(PNG_MAGIC)
            and len(png.content) > 10_000
        )
    (run / "metrics.jsonl").unlink()
    with TestClient(create_app(run, live=False, warm=False), base_url=LOCAL) as client:
        assert client.get(f"/api/saes/{SAE_ID}/summary").json()["has_training_curves"] is False
        missing = client.get("/api/training.png")
        assert missing.status_code == 404 and "metrics.jsonl" in missing.json()["detail"]


def test_overview_shows_the_training_curves(browser, trained_server):
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(trained_server + "/")
        page.wait_for_selector("[data-panel=training] img")
        page.wait_for_function("document.querySelector('[data-panel=training] img').complete")
        size = page.evaluate(
            "(() => { const i = document.querySelector('[data-panel=training] img');"
            " return [i.naturalWidth, i.naturalHeight]; })()"
        )
        assert size[0] > 400 and size[1] > 300  # the PNG decoded (a broken image is 0 x 0)
        assert page.locator("[data-panel=density] svg").count() == 1
        shot(page, "overview-training")
        assert errors == []
    finally:
        page.close()
