"""`saescope harvest` under torchrun with 2 gloo ranks: disjoint shards of one cache, equal to one process's."""

from __future__ import annotations

import torch

from saescope.activations import load_cache
from saescope.activations.cache import read_manifest
from saescope.cli import main
from saescope.fileio import read_json, write_json

ARGS = [
    "--hook",
    "blocks.1.hook_resid_post",
    "--tokens",
    str(32 * 20),
    "--context-length",
    "32",
    "--batch-size",
    "4",
    "--shard-mb",
    "0.3",
]


def test_two_rank_harvest_writes_the_cache_one_process_writes(torchrun, tmp_path):
    assert main(["harvest", "--out", str(tmp_path / "one"), *ARGS]) == 0
    torchrun(["-m", "saescope", "harvest", "--out", "two", *ARGS], cwd=tmp_path)
    one, two = read_manifest(tmp_path / "one"), read_manifest(tmp_path / "two")
    assert len(one.shards) >= 4 and one.shards == two.shards and two.complete
    assert one.identity() == two.identity() and one.n_tokens == two.n_tokens == 32 * 20
    for h in one.norms:  # the per-shard norm sums, added in shard order
        assert one.norms[h].count == two.norms[h].count
        assert abs(one.norms[h].norm_sum - two.norms[h].norm_sum) <= 1e-5 * one.norms[h].norm_sum
    # the shards were written by both ranks: each shard's record names the rank-independent file
    assert sorted(p.name for p in (tmp_path / "two").glob("shard_*.safetensors")) == [
        s["file"] for s in one.shards
    ]
    assert_same_cache(tmp_path / "one", tmp_path / "two")

    # interrupted: rank 1's shard 1 was being written and the manifest not yet finished
    first = tmp_path / "two" / "shard_00000.safetensors"
    before = first.stat().st_mtime_ns
    (tmp_path / "two" / "shard_00001.safetensors").unlink()
    manifest = read_json(tmp_path / "two" / "manifest.json")
    write_json(
        tmp_path / "two" / "manifest.json",
        {**manifest, "shards": [], "n_contexts": 0, "complete": False, "norms": {}},
    )
    torchrun(["-m", "saescope", "harvest", "--out", "two", *ARGS], cwd=tmp_path)
    assert first.stat().st_mtime_ns == before  # only the missing shard was written again
    assert read_manifest(tmp_path / "two").shards == one.shards
    assert_same_cache(tmp_path / "one", tmp_path / "two")


def assert_same_cache(a, b) -> None:
    batches_a, batches_b = list(load_cache(a)), list(load_cache(b))
    assert len(batches_a) == len(batches_b)
    for (tokens_a, acts_a), (tokens_b, acts_b) in zip(batches_a, batches_b, strict=True):
        assert torch.equal(tokens_a, tokens_b)
        for h in acts_a:
            torch.testing.assert_close(acts_a[h], acts_b[h], rtol=1e-4, atol=1e-4)
