"""Progress in a log: plain lines every few seconds, not a redraw per update."""

from __future__ import annotations

import io
import subprocess
import sys
import time

from saescope import progress

HOOK = "blocks.2.hook_resid_post"


def test_a_bar_in_a_log_prints_plain_lines_at_most_every_interval(monkeypatch):
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.2)
    log = io.StringIO()
    bar = progress.progress_bar(total=1000, unit="tok", desc="harvest", file=log)
    started = time.monotonic()
    for _ in range(100):
        bar.update(10)
        time.sleep(0.01)
    bar.close()
    elapsed = time.monotonic() - started
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert len(lines) <= elapsed / 0.2 + 2  # first line, one per interval, the final state
    assert lines[-1].startswith("harvest: 100% 1000/1000")
    assert lines.count(lines[-1]) == 1


def test_a_real_harvest_logged_to_a_file_writes_few_lines(tmp_path):
    log = tmp_path / "harvest.log"
    args = ["--hook", HOOK, "--context-length", "32", "--tokens", str(32 * 96)]
    args += ["--batch-size", "2", "--out", str(tmp_path / "cache")]
    with open(log, "w") as stderr:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "saescope.cli", "harvest", *args],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            timeout=600,
        )
        elapsed = time.monotonic() - started
    text = log.read_text()
    assert done.returncode == 0, text
    harvest_lines = [line for line in text.splitlines() if line.startswith("harvest")]
    assert "\r" not in text
    # 48 batches: a redrawing bar would write dozens of updates; one line per 10 s plus the ends
    assert 1 <= len(harvest_lines) <= elapsed / progress.LOG_INTERVAL_S + 2, text
    assert harvest_lines[-1].startswith("harvest: 100%"), text
