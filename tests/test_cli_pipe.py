"""`saescope ... | head`: the command stops quietly when its reader closes the pipe."""

from __future__ import annotations

import subprocess
import sys


def test_a_closed_pipe_is_not_a_traceback():
    proc = subprocess.Popen(
        [sys.executable, "-m", "saescope.cli", "corpus", "--preview", "400"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline()
    proc.stdout.close()  # as `head -1` does
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr
