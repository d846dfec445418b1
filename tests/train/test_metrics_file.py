"""A metrics.jsonl whose last line was torn by a kill mid-write: readers skip it, and a resumed
run drops it (rewriting the file atomically) instead of crashing on it."""

from __future__ import annotations

import json

from saescope.runs.metrics import read_metrics, truncate_metrics
from saescope.train import train
from tests.train.test_trainer import small_config

TORN = '{"kind": "train", "step": 9, "loss": 0.1'


def test_readers_skip_a_torn_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [{"kind": "train", "step": s, "loss": 1.0 / s} for s in (2, 4, 6)]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines) + TORN)
    assert [r["step"] for r in read_metrics(path)] == [2, 4, 6]
    truncate_metrics(path, step=4)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [2, 4]


def test_a_resumed_run_drops_a_torn_last_line(layer6_cache, tmp_path):
    cfg = small_config(tmp_path / "run", layer6_cache, {"optim.training_tokens": 4 * 512})
    train(cfg)
    path = tmp_path / "run" / "metrics.jsonl"
    before = path.read_text()
    path.write_text(before + TORN)
    train(cfg)  # resumes from the final checkpoint: nothing left to do, but the file is mended
    assert path.read_text() == before
