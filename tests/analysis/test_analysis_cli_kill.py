"""`saescope analyze` killed with SIGKILL in the middle of its streaming pass, then run again: it
resumes from its last checkpoint and writes the same analysis as a run that was never
interrupted."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from safetensors import safe_open

from saescope.analysis import analyze, load_analysis, save_analysis
from saescope.cli import build_parser
from saescope.cli.analyze import config_from_args

N_CONTEXTS = 16
# two contexts per forward and a checkpoint after each: the kill lands between two of several
# checkpoints (few contexts: the example pass runs the whole model over each context holding an
# example)
ARGS = [
    "--tokens",
    str(16 * N_CONTEXTS),
    "--context-length",
    "16",
    "--batch-size",
    "2",
    "--checkpoint-every",
    "32",
    "--top-k",
    "1",
    "--quantile-intervals",
    "2",
    "--per-interval",
    "1",
    "--inactive",
    "1",
    "--window",
    "2,1",
    "--cofiring-tokens",
    "4096",
]


def analyze_cmd(sae_dir: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "saescope.cli", "analyze", str(sae_dir), "--out", str(out), *ARGS]


def checkpoint_of(out: Path) -> Path:
    return out.with_name(f".{out.name}.analysis-checkpoint.safetensors")  # where the CLI keeps it


def contexts_done(checkpoint: Path) -> int:
    with safe_open(str(checkpoint), "pt") as f:
        return int(f.metadata()["contexts_done"])


def kill_after_first_checkpoint(cmd: list[str], checkpoint: Path) -> None:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    try:
        while not checkpoint.exists():  # written atomically: it exists only once complete
            assert proc.poll() is None, (
                f"the pass ended before its first checkpoint: {proc.communicate()}"
            )
            assert time.monotonic() < deadline, "no checkpoint after 10 minutes"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL


def assert_same_analysis(a, b) -> None:
    assert (a.sae_id, a.n_tokens, a.corpus, a.evals) == (b.sae_id, b.n_tokens, b.corpus, b.evals)
    for field in dataclasses.fields(a.features):
        x, y = getattr(a.features, field.name), getattr(b.features, field.name)
        if isinstance(x, dict):
            assert x.keys() == y.keys()
            for name in x:
                np.testing.assert_array_equal(x[name], y[name])
        else:
            np.testing.assert_array_equal(x, y, err_msg=field.name)
    assert a.examples == b.examples


def test_sigkill_mid_pass_then_rerun_resumes_to_the_uninterrupted_result(
    smollm2, sae_dir, tmp_path
):
    killed = tmp_path / "a.npz"
    checkpoint = checkpoint_of(killed)
    kill_after_first_checkpoint(analyze_cmd(sae_dir, killed), checkpoint)
    assert not killed.exists()
    done = contexts_done(checkpoint)
    assert 0 < done < N_CONTEXTS, f"killed after {done} of {N_CONTEXTS} contexts: not mid-pass"

    rerun = subprocess.run(
        analyze_cmd(sae_dir, killed), capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming the analysis after" in rerun.stdout
    assert not checkpoint.exists()  # removed once the result is written

    # the uninterrupted run in this process (the model is loaded already), with the config the CLI
    # parsed
    args = build_parser().parse_args(["analyze", str(sae_dir), "--out", str(killed), *ARGS])
    whole = save_analysis(
        analyze(sae_dir, config_from_args(args), model=smollm2, progress=False),
        tmp_path / "whole.npz",
    )
    assert_same_analysis(load_analysis(killed), load_analysis(whole))
