"""`saescope sae info` and `saescope sae convert`, run through the real CLI entry point."""

from __future__ import annotations

import json

import torch

from saescope.cli import main
from saescope.sae import load_sae
from tests.sae.sae_testing import OUR_FIXTURES, SHARED_FIXTURES


def test_info_prints_the_facts(capsys):
    assert main(["sae", "info", str(OUR_FIXTURES / "saelens" / "skip_transcoder")]) == 0
    out = capsys.readouterr().out
    for expected in (
        "standard transcoder",
        "d_in",
        "16",
        "d_sae",
        "64",
        "d_out",
        "24",
        "blocks.3.ln2.hook_normalized",
        "blocks.3.hook_mlp_out",
        "source_format",
        "saelens",
    ):
        assert expected in out


def test_info_json_for_a_sparsify_layer(capsys):
    assert (
        main(
            [
                "sae",
                "info",
                str(OUR_FIXTURES / "sparsify" / "layers"),
                "--layer",
                "layers.2",
                "--json",
            ]
        )
        == 0
    )
    facts = json.loads(capsys.readouterr().out)
    assert facts["architecture"] == "topk" and facts["k"] == 4 and facts["d_sae"] == 48
    assert facts["hook_point"] == "layers.2" and facts["source_format"] == "sparsify"


def test_convert_writes_native(tmp_path, capsys, x):
    src = SHARED_FIXTURES / "sparsify" / "topk"
    assert main(["sae", "convert", str(src), str(tmp_path / "out")]) == 0
    assert "wrote topk SAE" in capsys.readouterr().out
    assert main(["sae", "info", str(tmp_path / "out"), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert (facts["format"], facts["source_format"], facts["k"]) == ("saelens", "sparsify", 8)
    assert (tmp_path / "out" / "cfg.json").is_file() and (
        tmp_path / "out" / "sae_weights.safetensors"
    ).is_file()
    assert torch.equal(load_sae(tmp_path / "out")(x), load_sae(src)(x))


def test_bad_input_is_one_line_without_traceback(tmp_path, capsys):
    assert main(["sae", "info", str(tmp_path / "nothing-here")]) == 2
    err = capsys.readouterr().err
    assert (
        "saescope sae: error:" in err and "no such file or folder" in err and "Traceback" not in err
    )
