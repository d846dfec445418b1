"""Harvesting into the on-disk cache, on the real SmolLM2 and the built-in corpus."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from saescope.activations import HarvestConfig, harvest, load_cache
from saescope.activations.cache import read_manifest
from saescope.cli import main
from saescope.corpus import CorpusConfig, iter_context_batches
from saescope.errors import SaescopeError

HOOKS = ["blocks.2.hook_resid_post", "blocks.1.mlp.hook_post"]
CORPUS = CorpusConfig(context_length=32)


def small_harvest(out: Path, **overrides) -> HarvestConfig:
    cfg = dict(
        out=str(out), hooks=HOOKS, corpus=CORPUS, n_tokens=32 * 24, batch_size=4, shard_mb=0.9
    )
    cfg.update(overrides)
    return HarvestConfig(**cfg)


def test_cache_holds_the_model_activations_for_the_corpus_tokens(smollm2, tmp_path):
    cache = harvest(small_harvest(tmp_path / "c"), model=smollm2, progress=False)
    m = cache.manifest
    assert m.hooks == {h: smollm2.hook_points()[h] for h in HOOKS}
    assert m.n_tokens == 32 * 24 and m.complete and len(m.shards) > 1  # small shards: several
    expected_tokens = torch.cat(list(iter_context_batches(CORPUS, smollm2.tokenizer, 24)))[:24]
    tokens = torch.cat([t for t, _ in load_cache(tmp_path / "c")])
    assert torch.equal(tokens, expected_tokens)
    # an independent full forward (no early stop) on a few of the same contexts
    t, acts = next(load_cache(tmp_path / "c", batch_size=5))
    full = smollm2.run_with_cache(t, HOOKS, stop_early=False)
    for h in HOOKS:
        assert acts[h].shape == (5, 32, m.hooks[h])
        torch.testing.assert_close(acts[h], full[h], rtol=1e-4, atol=1e-4)
    # the norm statistics are those of the stored activations, BOS excluded
    all_acts = torch.cat([a[HOOKS[0]][:, 1:] for _, a in load_cache(tmp_path / "c")])
    torch.testing.assert_close(
        torch.tensor(m.norms[HOOKS[0]].mean_norm),
        all_acts.norm(dim=-1).mean(),
        rtol=1e-4,
        atol=1e-4,
    )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_storage_dtype(smollm2, tmp_path, dtype):
    harvest(small_harvest(tmp_path, n_tokens=64, dtype=dtype), model=smollm2, progress=False)
    _, acts = next(load_cache(tmp_path))
    assert all(a.dtype == getattr(torch, dtype) for a in acts.values())


def test_extending_a_harvest_continues_it(smollm2, tmp_path):
    full = harvest(small_harvest(tmp_path / "full"), model=smollm2, progress=False)
    harvest(small_harvest(tmp_path / "grow", n_tokens=32 * 8), model=smollm2, progress=False)
    grown = harvest(small_harvest(tmp_path / "grow"), model=smollm2, progress=False)
    assert grown.n_tokens == full.n_tokens
    for (t1, a1), (t2, a2) in zip(
        full.iter_batches(batch_size=4), grown.iter_batches(batch_size=4), strict=True
    ):
        assert torch.equal(t1, t2)
        torch.testing.assert_close(a1, a2)


def test_killed_harvest_resumes_without_using_half_written_shards(smollm2, tmp_path):
    """SIGKILL a real `saescope harvest` mid-way, leave junk where a shard was being written, resume."""
    out = tmp_path / "killed"
    args = [
        "--hook",
        HOOKS[0],
        "--hook",
        HOOKS[1],
        "--context-length",
        "32",
        "--tokens",
        str(32 * 64),
        "--batch-size",
        "4",
        "--shard-mb",
        "0.9",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "saescope.cli", "harvest", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        m = read_manifest(out) if (out / "manifest.json").exists() else None
        if m is not None and len(m.shards) >= 2:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    m = read_manifest(out)
    assert m is not None and not m.complete and len(m.shards) >= 2
    next_shard = out / f"shard_{len(m.shards):05d}.safetensors"
    next_shard.write_bytes(b"half a shard")  # as if the kill came during a rename
    (out / ".shard_99999.safetensors.tmp-1").write_bytes(b"junk")

    assert main(["harvest", *args]) == 0
    reference = harvest(
        small_harvest(tmp_path / "ref", n_tokens=32 * 64), model=smollm2, progress=False
    )
    resumed = list(load_cache(out, batch_size=8))
    assert sum(t.shape[0] for t, _ in resumed) == 64
    for (t1, a1), (t2, a2) in zip(reference.iter_batches(batch_size=8), resumed, strict=True):
        assert torch.equal(t1, t2)
        for h in HOOKS:
            torch.testing.assert_close(a1[h], a2[h], rtol=1e-4, atol=1e-4)


def test_refuses_a_directory_holding_another_harvest(smollm2, tmp_path):
    harvest(small_harvest(tmp_path, n_tokens=64), model=smollm2, progress=False)
    with pytest.raises(SaescopeError, match="another harvest's cache.*hooks"):
        harvest(
            small_harvest(tmp_path, n_tokens=64, hooks=["blocks.0.hook_resid_pre"]),
            model=smollm2,
            progress=False,
        )


def test_cli_harvest_and_its_bad_input(tmp_path, capsys):
    out = tmp_path / "cli"
    assert (
        main(
            [
                "harvest",
                "--hook",
                "blocks.0.hook_resid_post",
                "--tokens",
                "128",
                "--context-length",
                "32",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "128 tokens of blocks.0.hook_resid_post (d=576)" in capsys.readouterr().out

    cases = [
        (["--hook", "blocks.99.hook_resid_post"], "blocks.99.hook_resid_post"),
        (["--hook", "blocks.0.hook_nonsense"], "hook_resid_post"),  # lists the valid ones
        (["--corpus", str(tmp_path / "nowhere")], "nowhere"),
        (["--context-length", "1000000"], "1000000"),
        (["--tokens", "0"], "n_tokens"),
    ]
    for extra, expected in cases:
        capsys.readouterr()
        code = main(
            [
                "harvest",
                "--tokens",
                "64",
                "--context-length",
                "32",
                "--out",
                str(tmp_path / "bad"),
                *extra,
            ]
        )
        err = capsys.readouterr().err
        assert code == 2, extra
        assert expected in err and "Traceback" not in err, (extra, err)
