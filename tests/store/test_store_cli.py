"""`saescope store info|export|search` on a real store."""

from __future__ import annotations

import json

import pytest

from saescope.cli import main
from saescope.store import open_store
from tests.store.store_data import make_analysis


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "run" / "features.db"
    with open_store(path) as store:
        analysis = make_analysis()
        store.write_analysis(analysis)
        store.set_explanation(analysis.sae_id, 3, "The city of Paris")
    return path


def test_info_lists_and_summarises(store_path, capsys):
    assert main(["store", "info", str(store_path.parent)]) == 0
    out = capsys.readouterr().out
    assert (
        "1 SAE(s)" in out
        and "smollm2/blocks.6.hook_resid_post/topk-64" in out
        and "d_sae 64" in out
    )
    assert (
        main(
            ["store", "info", str(store_path), "--sae", "smollm2/blocks.6.hook_resid_post/topk-64"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "dead features: 2 of 64" in out and "explained: 1" in out and "fvu 0.21" in out
    assert main(["store", "info", str(store_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["d_sae"] == 64


def test_search_prints_matches(store_path, capsys):
    assert main(["store", "search", str(store_path), "paris", "--limit", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and "#3" in lines[0] and "explanation" in lines[0]
    assert main(["store", "search", str(store_path), "no-such-text"]) == 0
    assert "no feature matches" in capsys.readouterr().out


def test_export_json_and_neuronpedia(store_path, tmp_path, capsys):
    sae = "smollm2/blocks.6.hook_resid_post/topk-64"
    out = tmp_path / "f3.json"
    assert (
        main(
            ["store", "export", str(store_path), "--sae", sae, "--feature", "3", "--out", str(out)]
        )
        == 0
    )
    assert json.loads(out.read_text())["explanation"] == "The city of Paris"
    assert (
        main(
            [
                "store",
                "export",
                str(store_path),
                "--sae",
                sae,
                "--out",
                str(tmp_path / "np"),
                "--neuronpedia",
            ]
        )
        == 0
    )
    assert (
        tmp_path / "np" / "smollm2_topk-64_blocks.6.hook_resid_post_64" / "batch-0.json"
    ).exists()


def test_errors_are_one_paragraph(store_path, tmp_path, capsys):
    assert main(["store", "info", str(tmp_path / "missing.db")]) == 2
    err = capsys.readouterr().err
    assert "there is no feature store at" in err and "Traceback" not in err
    assert (
        main(
            ["store", "export", str(store_path), "--sae", "nope", "--out", str(tmp_path / "x.json")]
        )
        == 2
    )
    assert "has no SAE 'nope'" in capsys.readouterr().err
