"""The viewer's layering: serving a run reads its files (saescope.runs) without pulling in the
trainer."""

from __future__ import annotations

import subprocess
import sys


def test_the_server_reads_metrics_without_importing_the_trainer():
    code = (
        "import sys, saescope.server.app\n"
        "print(sorted(m for m in sys.modules if m.startswith('saescope.train')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
