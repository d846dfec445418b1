"""The run directory's one test and its paths, on real folders: what counts as a run directory,
where its SAEs and store are, and how a store argument finds the run around it."""

from __future__ import annotations

import json

import pytest

from saescope.errors import SaescopeError
from saescope.runs import layout
from saescope.store.connect import resolve_store_argument


def make_run(root, labels=("sae",)):
    run = root / "run"
    for label in labels:
        folder = run / "sae" if label == "sae" else run / "saes" / label
        folder.mkdir(parents=True)
        (folder / "cfg.json").write_text(json.dumps({"d_sae": 8}))
    return run


def test_a_trained_run_is_a_run_directory_and_lends_its_sae(tmp_path):
    run = make_run(tmp_path)
    assert layout.is_run_dir(run) and layout.holds_trained_sae(run)
    assert layout.sae_dir_of(run) == run / "sae"
    assert layout.trained_sae_dirs(run) == [run / "sae"]
    assert layout.run_dir_around(run / "sae") == run
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "cfg.json").write_text("{}")
    assert not layout.is_run_dir(lone) and layout.sae_dir_of(lone) == lone
    assert layout.run_dir_around(lone) is None


def test_a_run_training_several_saes_lists_each(tmp_path):
    run = make_run(tmp_path, labels=("b", "a"))
    assert layout.trained_sae_dirs(run) == [run / "saes" / "a", run / "saes" / "b"]
    assert layout.run_dir_around(run / "saes" / "a") is None  # no run.json yet: training runs
    (run / layout.TRAIN_CONFIG_FILE).write_text("{}")
    assert layout.run_dir_around(run / "saes" / "a") == run


def test_store_argument_run_directory_store_file_and_url(tmp_path):
    run = make_run(tmp_path)
    for given in (run, run / "features.db"):
        target = resolve_store_argument(given)
        assert target.path == run / "features.db" and target.run_dir == run
    loose = resolve_store_argument(tmp_path / "loose.db")
    assert loose.path == tmp_path / "loose.db" and loose.run_dir is None
    url = resolve_store_argument("postgresql://someone@127.0.0.1/features")
    assert url.where == "postgresql://someone@127.0.0.1/features" and url.run_dir is None


def test_store_argument_that_holds_no_store_names_field_value_and_accepted(tmp_path):
    run = make_run(tmp_path)
    with pytest.raises(SaescopeError, match=r"RUN_OR_STORE: .*run has no features.db yet"):
        resolve_store_argument(run, must_exist=True, field="RUN_OR_STORE")
    with pytest.raises(SaescopeError, match=r"store: .*nowhere.db does not exist; expected a run"):
        resolve_store_argument(tmp_path / "nowhere.db", must_exist=True)
