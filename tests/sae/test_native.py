"""The native format: save -> load gives identical outputs and keeps the metadata, for every architecture."""

from __future__ import annotations

import json

import pytest
import torch

import saescope
from saescope.sae import ARCHITECTURES, load_sae, save_sae
from saescope.sae.formats.sparsify import load_sparsify_layers
from tests.sae.sae_testing import OUR_FIXTURES, assert_close, random_sae

PROVENANCE = {
    "model_name": "smollm2-135m",
    "hook_name": "blocks.6.hook_resid_post",
    "hook_layer": 6,
    "context_size": 256,
    "dataset_path": "builtin:python-docs",
}


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_round_trip_identical(architecture, x, tmp_path):
    sae = random_sae(architecture, **PROVENANCE)
    save_sae(sae, tmp_path / "sae")
    loaded = load_sae(tmp_path / "sae")
    assert loaded.cfg.architecture == architecture
    assert torch.equal(loaded.encode(x), sae.encode(x))
    assert torch.equal(loaded(x), sae(x))
    for key, value in PROVENANCE.items():
        assert getattr(loaded.cfg, key) == value
    assert (loaded.cfg.k, loaded.cfg.matryoshka_widths) == (sae.cfg.k, sae.cfg.matryoshka_widths)


def test_files_are_saelens_layout(tmp_path):
    sae = random_sae("jumprelu", **PROVENANCE)
    save_sae(sae, tmp_path, log_feature_sparsity=torch.linspace(-5, -1, 64))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cfg.json",
        "sae_weights.safetensors",
        "sparsity.safetensors",
    ]
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    assert cfg["architecture"] == "jumprelu" and cfg["d_in"] == 16 and cfg["d_sae"] == 64
    assert cfg["metadata"]["hook_name"] == "blocks.6.hook_resid_post"
    assert cfg["metadata"]["hook_layer"] == 6  # our extra key, inside SAELens's free-form metadata
    assert torch.equal(load_sae(tmp_path).log_feature_sparsity, torch.linspace(-5, -1, 64))


def test_batchtopk_is_written_as_saelens_writes_it(tmp_path):
    sae = random_sae("batchtopk", k=9)
    save_sae(sae, tmp_path)
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    assert cfg["architecture"] == "jumprelu"  # SAELens's inference form
    assert cfg["metadata"]["saescope_architecture"] == "batchtopk"
    loaded = load_sae(tmp_path)
    assert loaded.cfg.architecture == "batchtopk" and loaded.cfg.k == 9
    assert "saescope_architecture" not in json.dumps(loaded.cfg.extra)


@pytest.mark.parametrize("architecture", ["standard", "jumprelu", "topk", "gated"])
def test_transcoder_round_trip(architecture, x, tmp_path):
    sae = random_sae(
        architecture,
        d_out=24,
        apply_b_dec_to_input=False,
        skip_connection=True,
        hook_name="blocks.2.ln2.hook_normalized",
        hook_name_out="blocks.2.hook_mlp_out",
    )
    save_sae(sae, tmp_path)
    loaded = load_sae(tmp_path)
    assert loaded.cfg.is_transcoder and loaded.cfg.skip_connection and loaded.d_out == 24
    assert loaded.cfg.hook_name_out == "blocks.2.hook_mlp_out"
    assert torch.equal(loaded(x), sae(x))


def test_constant_input_scale_is_folded_on_save(x, tmp_path):
    sae = random_sae("jumprelu", normalize_activations="constant_scale")
    sae.input_scale.fill_(0.2)
    save_sae(sae, tmp_path)
    loaded = load_sae(tmp_path)
    assert loaded.cfg.normalize_activations == "none"
    assert_close(loaded(x), sae(x), "same outputs without the scale")
    assert_close(loaded.encode(x), sae.encode(x), "same acts")
    assert float(sae.input_scale) == pytest.approx(0.2)  # the caller's SAE is untouched


def test_unknown_saelens_keys_round_trip(tmp_path):
    folder = OUR_FIXTURES / "saelens" / "matryoshka_batchtopk_checkpoint"
    save_sae(load_sae(folder), tmp_path)
    original = json.loads((folder / "cfg.json").read_text())
    written = json.loads((tmp_path / "cfg.json").read_text())
    for key in (
        "topk_threshold_lr",
        "use_matryoshka_aux_loss",
        "aux_loss_coefficient",
        "reshape_activations",
    ):
        assert written[key] == original[key]
    assert (
        written["metadata"]["training_architecture_details"]
        == original["metadata"]["training_architecture_details"]
    )


def test_converted_sparsify_layers_keep_outputs(x, tmp_path):
    for name, sae in load_sparsify_layers(OUR_FIXTURES / "sparsify" / "layers").items():
        save_sae(sae, tmp_path / name)
        loaded = saescope.load_sae(tmp_path / name)
        assert loaded.cfg.source_format == "sparsify" and loaded.cfg.hook_name == name
        assert torch.equal(loaded(x), sae(x))


def test_load_options(x, tmp_path):
    save_sae(random_sae("standard"), tmp_path)
    half = load_sae(tmp_path, dtype=torch.float64)
    assert half.W_enc.dtype == torch.float64 and half.cfg.dtype == "float64"
    assert half.encode(x).dtype == torch.float64
    assert load_sae(tmp_path, format="saelens").cfg.architecture == "standard"
