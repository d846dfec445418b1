"""Truncated, corrupt or incomplete foreign files give a SaescopeError that names the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from saescope.errors import SaescopeError
from saescope.sae import load_sae
from tests.sae_formats.foreign_fixtures import FIXTURES

# fixture folder, weights file inside it
WEIGHTS = {
    "dictionary_learning/standard": "ae.pt",
    "lm_saes/topk": "sae_weights.safetensors",
    "lm_saes/llama_scope_v1_res": "checkpoints/final.safetensors",
    "openai/v5_topk": "resid_post_mlp_v5_32k/autoencoders/6.pt",
    "gemma_scope/jumprelu": "gemma-scope-2b-pt-res/layer_5/width_128/average_l0_40/params.npz",
}


def what_to_load(name: str, folder: Path) -> Path:
    """The folder, or the file itself for the formats whose SAE is one file."""
    return folder / WEIGHTS[name] if name.startswith(("openai", "gemma_scope")) else folder


def copy_fixture(name: str, tmp_path: Path) -> Path:
    folder = tmp_path / name.replace("/", "_")
    shutil.copytree(FIXTURES / name, folder)
    return folder


@pytest.mark.parametrize("name", WEIGHTS)
def test_truncated_weights(name: str, tmp_path: Path):
    folder = copy_fixture(name, tmp_path)
    weights = folder / WEIGHTS[name]
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(SaescopeError, match="truncated or corrupt") as err:
        load_sae(what_to_load(name, folder))
    assert str(weights) in str(err.value)


@pytest.mark.parametrize("name", WEIGHTS)
def test_garbage_weights(name: str, tmp_path: Path):
    folder = copy_fixture(name, tmp_path)
    weights = folder / WEIGHTS[name]
    weights.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(SaescopeError) as err:
        load_sae(what_to_load(name, folder))
    assert str(weights) in str(err.value)


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("dictionary_learning/topk", "config.json"),
        ("lm_saes/relu", "config.json"),
        ("lm_saes/llama_scope_v1_transcoder", "hyperparams.json"),
    ],
)
def test_corrupt_config(name: str, config: str, tmp_path: Path):
    folder = copy_fixture(name, tmp_path)
    (folder / config).write_text('{"d_model": 32, ')
    with pytest.raises(SaescopeError, match="not valid JSON") as err:
        load_sae(folder)
    assert str(folder / config) in str(err.value)


def test_dictionary_learning_missing_tensor(tmp_path: Path):
    folder = copy_fixture("dictionary_learning/gated", tmp_path)
    state = torch.load(folder / "ae.pt")
    del state["r_mag"]
    torch.save(state, folder / "ae.pt")
    with pytest.raises(SaescopeError, match="r_mag") as err:
        load_sae(folder)
    assert str(folder / "ae.pt") in str(err.value)


def test_lm_saes_missing_tensor(tmp_path: Path):
    folder = copy_fixture("lm_saes/transcoder", tmp_path)
    weights = folder / "sae_weights.safetensors"
    tensors = load_file(str(weights))
    del tensors["activation_function.log_jumprelu_threshold"]
    save_file(tensors, str(weights))
    with pytest.raises(SaescopeError, match="log_jumprelu_threshold") as err:
        load_sae(folder)
    assert str(weights) in str(err.value)


def test_lm_saes_weights_contradict_config(tmp_path: Path):
    folder = copy_fixture("lm_saes/relu", tmp_path)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "expansion_factor": 8}))
    weights = folder / "sae_weights.safetensors"
    tensors = load_file(str(weights))
    tensors["b_E"] = torch.zeros(256)  # one tensor of the new size, the others of the old
    save_file(tensors, str(weights))
    with pytest.raises(SaescopeError, match="shape") as err:
        load_sae(folder)
    assert str(weights) in str(err.value)


def test_lm_saes_dataset_norm_missing(tmp_path: Path):
    folder = copy_fixture("lm_saes/llama_scope_v1_res", tmp_path)
    hp = json.loads((folder / "hyperparams.json").read_text())
    del hp["dataset_average_activation_norm"]
    (folder / "hyperparams.json").write_text(json.dumps(hp))
    with pytest.raises(SaescopeError, match="dataset average activation norm") as err:
        load_sae(folder)
    assert "hyperparams.json" in str(err.value)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"act_fn": "batchtopk"}, "batchtopk"),
        ({"sae_type": "crosscoder"}, "crosscoder"),
        ({"norm_activation": "batch-wise"}, "batch-wise"),
    ],
)
def test_lm_saes_unsupported(change: dict, match: str, tmp_path: Path):
    folder = copy_fixture("lm_saes/relu", tmp_path)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, **change}))
    with pytest.raises(SaescopeError, match=match) as err:
        load_sae(folder)
    assert "config.json" in str(err.value)


def test_gemma_scope_missing_array(tmp_path: Path):
    folder = copy_fixture("gemma_scope/jumprelu", tmp_path)
    npz = next(folder.rglob("params.npz"))
    with np.load(npz) as params:
        arrays = {name: params[name] for name in params.files if name != "threshold"}
    np.savez(npz, **arrays)
    with pytest.raises(SaescopeError, match="threshold") as err:
        load_sae(npz.parent)
    assert str(npz) in str(err.value)


def test_openai_unknown_activation(tmp_path: Path):
    folder = copy_fixture("openai/v5_topk", tmp_path)
    weights = next(folder.rglob("*.pt"))
    state = torch.load(weights)
    state["activation"] = "JumpReLU"
    torch.save(state, weights)
    with pytest.raises(SaescopeError, match="JumpReLU") as err:
        load_sae(weights)
    assert str(weights) in str(err.value)
