"""Atomic writes sync the directory after the rename; names built from data stay one component."""

from __future__ import annotations

import os
import stat

import pytest

from saescope import fileio
from saescope.errors import SaescopeError


def test_atomic_write_syncs_the_directory_after_the_rename(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        mode = os.fstat(fd).st_mode
        synced.append(("dir" if stat.S_ISDIR(mode) else "file", (tmp_path / "a.json").exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    fileio.write_json(tmp_path / "a.json", {"x": 1})
    assert synced == [("file", False), ("dir", True)]


def test_confined_refuses_paths_leaving_the_base(tmp_path):
    assert fileio.confined(tmp_path, "sub/shard.safetensors", "shard") == (
        tmp_path / "sub" / "shard.safetensors"
    )
    for bad in ["../x", "/abs", "a/../../x", "", "nul\x00byte"]:
        with pytest.raises(SaescopeError, match="shard"):
            fileio.confined(tmp_path, bad, "shard")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "google/gemma-2-2b_res_blocks.6.hook_resid_post_64",
            "google-gemma-2-2b_res_blocks.6.hook_resid_post_64",
        ),
        ("../../etc", "etc"),
        ("..", "unnamed"),
        (
            "smollm2_topk-64_blocks.6.hook_resid_post_64",
            "smollm2_topk-64_blocks.6.hook_resid_post_64",
        ),
    ],
)
def test_path_component(text, expected):
    assert fileio.path_component(text) == expected
