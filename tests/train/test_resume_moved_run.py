"""A run directory that was moved or copied resumes where it now is, and leaves the original alone."""

from __future__ import annotations

import shutil

from saescope.cli import main
from saescope.fileio import read_json
from saescope.train import train
from tests.train.test_trainer import small_config


def test_a_moved_run_resumes_in_its_new_folder(layer6_cache, tmp_path):
    first = tmp_path / "first"
    cfg = small_config(first, layer6_cache, {"optim.training_tokens": 4 * 512})
    train(cfg)
    moved = tmp_path / "moved"
    shutil.move(first, moved)
    copied = tmp_path / "copied"
    shutil.copytree(moved, copied)
    before = {p.name: p.stat().st_mtime_ns for p in moved.iterdir() if p.is_file()}

    assert main(["train", "--resume", str(copied), "--no-progress"]) == 0
    assert not first.exists()  # not trained into the folder the run was first given
    assert {p.name: p.stat().st_mtime_ns for p in moved.iterdir() if p.is_file()} == before
    assert read_json(copied / "train_config.json")["run_dir"] == str(copied)
    assert (copied / "sae" / "cfg.json").exists()
