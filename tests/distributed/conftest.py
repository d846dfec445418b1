"""Fixtures for the torch.distributed tests: a small real activation cache, and a 2-process torchrun."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import saescope
from tests.sae_builders import topk_sae_from_samples

HOOK = "blocks.2.hook_resid_post"


@pytest.fixture(scope="session")
def dist_cache(smollm2, tmp_path_factory):
    """5,120 tokens of SmolLM2 layer-2 activations on the built-in corpus, in small shards."""
    from saescope.activations import HarvestConfig, harvest
    from saescope.corpus import CorpusConfig

    out = tmp_path_factory.mktemp("dist-acts") / "cache"
    cfg = HarvestConfig(
        out=str(out),
        hooks=[HOOK],
        corpus=CorpusConfig(context_length=64),
        n_tokens=64 * 80,
        batch_size=16,
        shard_mb=1,
    )
    harvest(cfg, model=smollm2, progress=False)
    return out


@pytest.fixture(scope="session")
def torchrun():
    """run(args, cwd) -> CompletedProcess: `torchrun --standalone --nproc-per-node 2 ARGS` on this saescope."""

    def run(args: list[str], cwd: Path, nproc: int = 2) -> subprocess.CompletedProcess:
        env = dict(
            os.environ,
            PYTHONPATH=str(Path(saescope.__file__).parents[1]),
            OMP_NUM_THREADS="1",
            HF_HUB_OFFLINE="1",
        )
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nnodes",
            "1",
            "--nproc-per-node",
            str(nproc),
            *args,
        ]
        done = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, (
            f"torchrun {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        )
        return done

    return run


@pytest.fixture(scope="session")
def dist_sae_dir(dist_cache, tmp_path_factory):
    """A TopK SAE file on SmolLM2's layer 2 whose decoder rows are centred real activations of the
    cache (tests/sae_builders.py), so its features fire on real text; built in a second, not trained."""
    from saescope.activations import load_cache
    from saescope.sae import save_sae

    _, acts = next(load_cache(dist_cache, batch_size=8))
    acts = acts[HOOK][:, 1:].reshape(-1, acts[HOOK].shape[-1]).float()
    sae = topk_sae_from_samples(acts, HOOK, d_sae=128, k=8, seed=0)
    out = tmp_path_factory.mktemp("dist-sae") / "topk"
    save_sae(sae, out)
    return out
