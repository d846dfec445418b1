"""Broken files get a clear message naming the file and the problem, never a bare traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from saescope.errors import ConfigError, SaescopeError
from saescope.sae import load_sae
from tests.sae.sae_testing import OUR_FIXTURES, SHARED_FIXTURES


@pytest.fixture
def saelens_copy(tmp_path) -> Path:
    folder = tmp_path / "sae"
    shutil.copytree(SHARED_FIXTURES / "saelens" / "jumprelu", folder)
    return folder


@pytest.fixture
def sparsify_copy(tmp_path) -> Path:
    folder = tmp_path / "layers.3"
    shutil.copytree(OUR_FIXTURES / "sparsify" / "transcoder_skip", folder)
    return folder


def edit_cfg(folder: Path, **changes) -> None:
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg.update(changes)
    (folder / "cfg.json").write_text(json.dumps(cfg))


def test_truncated_weights(saelens_copy):
    weights = saelens_copy / "sae_weights.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(SaescopeError, match=r"sae_weights\.safetensors.*truncated or corrupt"):
        load_sae(saelens_copy)


def test_garbage_weights(sparsify_copy):
    (sparsify_copy / "sae.safetensors").write_bytes(b"\x00\x01not a safetensors file at all")
    with pytest.raises(SaescopeError, match=r"sae\.safetensors.*truncated or corrupt"):
        load_sae(sparsify_copy)


def test_cfg_contradicts_shapes(saelens_copy):
    edit_cfg(saelens_copy, d_sae=128)
    with pytest.raises(SaescopeError) as err:
        load_sae(saelens_copy)
    message = str(err.value)
    assert (
        "sae_weights.safetensors" in message
        and "W_enc" in message
        and "[16, 64]" in message
        and "[16, 128]" in message
    )


def test_sparsify_cfg_contradicts_shapes(sparsify_copy):
    edit_cfg(sparsify_copy, d_in=32)
    with pytest.raises(
        SaescopeError,
        match=r"sae\.safetensors: tensor W_enc has shape \[16, 64\] but the config says \[32, 128\]",
    ):
        load_sae(sparsify_copy)


def test_unknown_architecture(saelens_copy):
    edit_cfg(saelens_copy, architecture="hypersparse")
    with pytest.raises(
        SaescopeError, match=r"cfg\.json: unknown or unsupported SAELens architecture 'hypersparse'"
    ):
        load_sae(saelens_copy)


def test_nan_in_weights(saelens_copy):
    weights = saelens_copy / "sae_weights.safetensors"
    tensors = load_file(str(weights))
    tensors["W_dec"][3, 5] = float("nan")
    save_file(tensors, str(weights))
    with pytest.raises(SaescopeError, match=r"sae_weights\.safetensors: tensor W_dec holds 1 NaN"):
        load_sae(saelens_copy)


def test_missing_tensor(saelens_copy):
    weights = saelens_copy / "sae_weights.safetensors"
    tensors = load_file(str(weights))
    del tensors["threshold"]
    save_file(tensors, str(weights))
    with pytest.raises(
        SaescopeError,
        match=r"sae_weights\.safetensors: missing tensor\(s\) threshold for a jumprelu SAE",
    ):
        load_sae(saelens_copy)


def test_cfg_not_json(saelens_copy):
    (saelens_copy / "cfg.json").write_text('{"d_in": 16, ')
    with pytest.raises(SaescopeError, match=r"cfg\.json: not valid JSON"):
        load_sae(saelens_copy)


def test_bad_cfg_value_names_file_and_field(saelens_copy):
    edit_cfg(saelens_copy, normalize_activations="rms_norm")
    with pytest.raises(SaescopeError, match=r"cfg\.json: normalize_activations: got 'rms_norm'"):
        load_sae(saelens_copy)


def test_sparsify_unsupported_activation(sparsify_copy):
    edit_cfg(sparsify_copy, activation="groupmax")
    with pytest.raises(
        SaescopeError, match=r"cfg\.json: sparsify activation 'groupmax' is not supported"
    ):
        load_sae(sparsify_copy)


def test_unknown_format_and_missing_path(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SaescopeError, match=r"not a known SAE format \(files: notes\.txt\)"):
        load_sae(tmp_path)
    with pytest.raises(SaescopeError, match="no such file or folder"):
        load_sae(tmp_path / "missing")
    with pytest.raises(ConfigError) as err:
        load_sae(tmp_path, format="onnx")
    assert err.value.field == "format"


def test_sparsify_layer_choice(tmp_path):
    root = OUR_FIXTURES / "sparsify" / "layers"
    with pytest.raises(SaescopeError, match="pass layer= one of layers.2, layers.10"):
        load_sae(root)
    with pytest.raises(SaescopeError, match="no layer 'layers.7'"):
        load_sae(root, layer="layers.7")


def test_error_names_file_for_truncated_sparsity(tmp_path):
    folder = tmp_path / "sae"
    shutil.copytree(OUR_FIXTURES / "saelens" / "standard_with_sparsity", folder)
    (folder / "sparsity.safetensors").write_bytes(b"\x10\x00")
    with pytest.raises(SaescopeError, match=r"sparsity\.safetensors.*truncated or corrupt"):
        load_sae(folder)


def test_non_finite_inputs_are_not_weights_problems(x):
    # NaN inputs are the caller's business: encode passes them through instead of raising
    sae = load_sae(SHARED_FIXTURES / "saelens" / "standard")
    assert torch.isnan(sae.encode(torch.full((1, 16), float("nan")))).all()


def test_legacy_pt_with_plain_dict_cfg_and_truncation(tmp_path, x):
    # the documented layout with a dict cfg (no pickled class), as some re-saved files have
    reference = load_sae(SHARED_FIXTURES / "saelens" / "standard")
    state = {
        name: t.detach() for name, t in reference.state_dict().items() if name != "input_scale"
    }
    path = tmp_path / "sae.pt"
    torch.save(
        {
            "cfg": {"d_in": 16, "d_sae": 64, "hook_point": "blocks.0.hook_resid_pre"},
            "state_dict": state,
        },
        path,
    )
    sae = load_sae(path)
    assert (
        sae.cfg.source_format == "saelens_legacy" and sae.cfg.hook_name == "blocks.0.hook_resid_pre"
    )
    assert torch.equal(sae(x), reference(x))
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(SaescopeError, match=r"sae\.pt.*truncated or corrupt"):
        load_sae(path, format="saelens_legacy")
