"""Every file written by a peer library loads here and reproduces that library's own outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from saescope.sae import load_sae
from saescope.sae.formats.sparsify import load_sparsify_layers
from tests.sae.sae_testing import OUR_FIXTURES, assert_close, fixture_id, reference_folders

SAELENS = reference_folders("saelens")
SPARSIFY = reference_folders("sparsify")


def test_fixtures_are_present():
    # the shared ones (standard, topk, jumprelu, gated) and ours (transcoders, normalisation modes, ...)
    assert len(SAELENS) >= 15 and len(SPARSIFY) >= 4


@pytest.mark.parametrize("folder", SAELENS, ids=fixture_id)
def test_saelens_fixture(folder: Path):
    ref = load_file(str(folder / "reference.safetensors"))
    sae = load_sae(folder)
    assert sae.cfg.source_format == "saelens"
    acts = sae.encode(ref["x"])
    assert_close(acts, ref["feature_acts"], "encode")
    # decode undoes the normalisation of the last encode, as SAELens's decode does
    assert_close(sae.decode(ref["feature_acts"]), ref["recon"], "decode")
    if "out" in ref:
        assert_close(sae(ref["x"]), ref["out"], "forward")


@pytest.mark.parametrize("folder", SPARSIFY, ids=fixture_id)
def test_sparsify_fixture(folder: Path):
    ref = load_file(str(folder / "reference.safetensors"))
    sae = load_sae(folder)
    assert sae.cfg.source_format == "sparsify"
    dense_ref = torch.zeros(ref["x"].shape[0], sae.d_sae).scatter(
        -1, ref["top_indices"], ref["top_acts"]
    )
    assert_close(sae.encode(ref["x"]), dense_ref, "encode (dense)")
    values, indices = sae.encode_sparse(ref["x"])
    assert_close(
        torch.zeros_like(dense_ref).scatter(-1, indices, values), dense_ref, "encode_sparse"
    )
    assert_close(
        sae.decode_sparse(ref["top_acts"], ref["top_indices"]), ref["recon"], "decode_sparse"
    )
    assert_close(sae.decode(dense_ref), ref["recon"], "decode")
    if "out" in ref:  # skip connection included
        assert_close(sae(ref["x"]), ref["out"], "forward")


def test_sparsify_folder_of_layers():
    root = next(f.parent for f in SPARSIFY if f.parent.name == "layers")
    saes = load_sparsify_layers(root)
    assert list(saes) == ["layers.2", "layers.10"]  # natural order
    assert saes["layers.10"].cfg.hook_name == "layers.10"
    picked = load_sae(root, layer="layers.10")
    assert torch.equal(picked.W_enc, saes["layers.10"].W_enc)


def test_sparsify_transcoder_metadata():
    sae = load_sae(next(f for f in SPARSIFY if f.name == "transcoder_skip"))
    assert sae.cfg.is_transcoder and sae.cfg.skip_connection and not sae.cfg.apply_b_dec_to_input


def test_saelens_transcoder_metadata():
    sae = load_sae(next(f for f in SAELENS if f.name == "skip_transcoder"))
    assert sae.cfg.is_transcoder and sae.d_out == 24 and sae.W_skip is not None
    assert sae.cfg.hook_name == "blocks.3.ln2.hook_normalized"
    assert sae.cfg.hook_name_out == "blocks.3.hook_mlp_out"


def test_saelens_checkpoint_kinds():
    by_name = {f.name: f for f in SAELENS}
    matryoshka = load_sae(by_name["matryoshka_batchtopk_checkpoint"])
    assert matryoshka.cfg.architecture == "matryoshka_batchtopk"
    assert matryoshka.cfg.matryoshka_widths == [8, 24, 64] and matryoshka.cfg.k == 6
    assert float(matryoshka.threshold) == pytest.approx(0.3)
    sparsity = load_sae(by_name["standard_with_sparsity"]).log_feature_sparsity
    assert sparsity is not None and sparsity.shape == (64,)
    provenance = load_sae(by_name["standard_layer_norm"]).cfg
    assert (provenance.model_name, provenance.hook_name, provenance.context_size) == (
        "smollm2-135m",
        "blocks.3.hook_resid_post",
        128,
    )


LEGACY = OUR_FIXTURES / "saelens_legacy"


@pytest.mark.parametrize(
    ("case", "source_format"),
    [("pt/final_sparse_autoencoder.pt", "saelens_legacy"), ("flat_cfg", "saelens")],
)
def test_saelens_0_5_files(case, source_format):
    # written by sae-lens 0.5.1: a pickled .pt and a pre-6.0 flat cfg.json, both with a scaling_factor
    folder = LEGACY / case.split("/")[0]
    ref = load_file(str(folder / "reference.safetensors"))
    sae = load_sae(LEGACY / case)
    assert sae.cfg.source_format == source_format
    assert (sae.cfg.model_name, sae.cfg.hook_name, sae.cfg.hook_layer) == (
        "gelu-2l",
        "blocks.1.hook_resid_pre",
        1,
    )
    assert_close(sae.encode(ref["x"]), ref["feature_acts"], "encode")
    assert_close(sae(ref["x"]), ref["recon"], "forward")
