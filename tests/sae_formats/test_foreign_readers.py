"""Files written by dictionary_learning, llamascopium (lm-saes), OpenAI's model.py and Gemma Scope's layout
load here and reproduce what those libraries (or the documented math) computed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from saescope.sae import load_sae
from saescope.sae.formats import detect_format
from saescope.sae.formats.lm_saes import DecoderNormTopKSAE
from saescope.sae.native import save_sae
from tests.sae_formats.foreign_fixtures import (
    FIXTURES,
    assert_close,
    case_id,
    cases,
    fixture_folders,
    load_path,
)

CASES = cases()


def test_every_library_has_fixtures():
    counts = {
        fmt: len(fixture_folders(fmt))
        for fmt in ("dictionary_learning", "lm_saes", "openai", "gemma_scope")
    }
    assert counts == {"dictionary_learning": 8, "lm_saes": 7, "openai": 2, "gemma_scope": 1}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_reproduces_the_library(case: tuple[str, Path]):
    fmt, folder = case
    ref = load_file(str(folder / "reference.safetensors"))
    sae = load_sae(load_path(folder))
    assert sae.cfg.source_format == fmt
    assert_close(sae.encode(ref["x"]), ref["feature_acts"], "encode")
    # decode after encode: OpenAI's layer norm is undone with the statistics of that encode
    assert_close(sae.decode(ref["feature_acts"]), ref["recon"], "decode")
    assert_close(sae(ref["x"]), ref["forward"], "forward")
    if "latents_pre_act" in ref:
        x_normed, _ = sae.normalize_input(ref["x"])
        assert_close(
            sae.pre_acts(sae.sae_input(x_normed)), ref["latents_pre_act"], "pre-activations"
        )


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_native_round_trip_keeps_outputs(case: tuple[str, Path], tmp_path: Path):
    """What we read, saved in the native (SAELens) format and read back, computes the same."""
    _, folder = case
    ref = load_file(str(folder / "reference.safetensors"))
    sae = load_sae(load_path(folder))
    native = save_sae(sae, tmp_path / "native")
    assert detect_format(native) == "saelens"
    again = load_sae(native)
    assert_close(again(ref["x"]), ref["forward"], "forward after the round trip")
    acts = again.encode(ref["x"])
    if isinstance(sae, DecoderNormTopKSAE):
        # SAELens reports the chosen features times their (saved) decoder norm
        assert_close(
            acts, ref["feature_acts"] * again.W_dec_norms().detach(), "encode after the round trip"
        )
    else:
        assert_close(acts, ref["feature_acts"], "encode after the round trip")


DICTIONARY_LEARNING = {
    "standard": ("standard", None),
    "topk": ("topk", 8),
    "batch_topk": ("batchtopk", 8),
    "jumprelu": ("jumprelu", None),
    "gated": ("gated", None),
    "matryoshka_batch_topk": ("matryoshka_batchtopk", 8),
}


@pytest.mark.parametrize("kind", DICTIONARY_LEARNING)
def test_dictionary_learning_metadata(kind: str):  # the trainer folders (with config.json)
    sae = load_sae(FIXTURES / "dictionary_learning" / kind)
    architecture, k = DICTIONARY_LEARNING[kind]
    assert (sae.cfg.architecture, sae.cfg.k) == (architecture, k)
    assert sae.cfg.model_name == "EleutherAI/pythia-70m-deduped"
    assert (sae.cfg.hook_name, sae.cfg.hook_layer) == ("blocks.3.hook_resid_post", 3)
    assert sae.cfg.apply_b_dec_to_input == (kind != "jumprelu")


def test_dictionary_learning_details():
    matryoshka = load_sae(FIXTURES / "dictionary_learning" / "matryoshka_batch_topk")
    # group sizes 16, 16, 32 become nested widths
    assert matryoshka.cfg.matryoshka_widths == [16, 32, 64]
    batch_topk = load_sae(FIXTURES / "dictionary_learning" / "batch_topk")
    assert float(batch_topk.threshold) == pytest.approx(0.6)
    standard = load_sae(FIXTURES / "dictionary_learning" / "standard")
    # load_dictionary's decoder normalisation
    assert torch.allclose(standard.W_dec_norms(), torch.ones(64), atol=1e-5)


def test_dictionary_learning_intermediate_checkpoint():
    """trainSAE's checkpoints/ae_<step>.pt loads with the trainer folder's config.json."""
    folder = FIXTURES / "dictionary_learning" / "topk_with_checkpoint"
    checkpoint = folder / "checkpoints" / "ae_6.pt"
    assert detect_format(checkpoint) == "dictionary_learning"
    sae = load_sae(checkpoint)
    assert (sae.cfg.k, sae.cfg.hook_name) == (6, "blocks.2.hook_resid_post")
    ref = load_file(str(folder / "reference_checkpoint_6.safetensors"))
    assert_close(sae.encode(ref["x"]), ref["feature_acts"], "encode")
    assert_close(sae(ref["x"]), ref["forward"], "forward")
    final = load_file(str(folder / "reference.safetensors"))
    assert not torch.allclose(
        final["forward"], ref["forward"], atol=1e-3
    )  # step 6 is not the final SAE


def test_dictionary_learning_autoencoder_new():
    """No trainer writes AutoEncoderNew, so its fixture has no config.json: decoder bias, no input bias."""
    sae = load_sae(FIXTURES / "dictionary_learning" / "standard_new_no_config")
    assert (sae.cfg.architecture, sae.cfg.apply_b_dec_to_input, sae.cfg.hook_name) == (
        "standard",
        False,
        None,
    )


def test_dictionary_learning_without_config(tmp_path: Path):
    """Older releases have ae.pt alone: the class comes from the tensor names."""
    for kind in ("standard", "gated", "jumprelu", "matryoshka_batch_topk"):
        (tmp_path / kind).mkdir()
        (tmp_path / kind / "ae.pt").write_bytes(
            (FIXTURES / "dictionary_learning" / kind / "ae.pt").read_bytes()
        )
        ref = load_file(str(FIXTURES / "dictionary_learning" / kind / "reference.safetensors"))
        sae = load_sae(tmp_path / kind)
        assert sae.cfg.source_format == "dictionary_learning" and sae.cfg.model_name is None
        assert_close(sae(ref["x"]), ref["forward"], f"{kind} forward")


LM_SAES = {
    # name: (architecture, normalisation, hook_name, hook_name_out, model)
    "relu": ("standard", "expected_average_only_in", "blocks.3.hook_resid_post", None, "EleutherAI/pythia-160m"),
    "topk": ("topk", "expected_average_only_in", "blocks.3.hook_resid_post", None, "EleutherAI/pythia-160m"),
    "topk_token_wise": ("topk", "constant_norm_rescale", "blocks.3.hook_resid_post", None, "EleutherAI/pythia-160m"),
    "jumprelu_folded": ("jumprelu", "none", "blocks.3.hook_resid_post", None, "EleutherAI/pythia-160m"),
    "transcoder": ("jumprelu", "expected_average_only_in", "blocks.3.ln2.hook_normalized", "blocks.3.hook_mlp_out", "EleutherAI/pythia-160m"),
    "llama_scope_v1_res": ("jumprelu", "expected_average_only_in", "blocks.3.hook_resid_post", None, "meta-llama/Llama-3.1-8B"),
    "llama_scope_v1_transcoder": ("jumprelu", "expected_average_only_in", "blocks.3.ln2.hook_normalized", "blocks.3.hook_mlp_out", "meta-llama/Llama-3.1-8B"),
}  # fmt: skip


@pytest.mark.parametrize("kind", LM_SAES)
def test_lm_saes_metadata(kind: str):
    sae = load_sae(FIXTURES / "lm_saes" / kind)
    architecture, normalize, hook, hook_out, model = LM_SAES[kind]
    cfg = sae.cfg
    assert (cfg.architecture, cfg.normalize_activations, cfg.hook_name, cfg.hook_name_out, cfg.model_name) == (
        architecture, normalize, hook, hook_out, model,
    )  # fmt: skip
    assert cfg.hook_layer == 3 and cfg.is_transcoder == (hook_out is not None)
    assert not cfg.apply_b_dec_to_input


def test_lm_saes_topk_chooses_by_decoder_norm():
    """sparsity_include_decoder_norm: a plain top-k of h picks other features on this fixture."""
    sae = load_sae(FIXTURES / "lm_saes" / "topk")
    ref = load_file(str(FIXTURES / "lm_saes" / "topk" / "reference.safetensors"))
    assert isinstance(sae, DecoderNormTopKSAE) and sae.cfg.k == 8
    hidden_pre = sae.pre_acts(sae.sae_input(sae.normalize_input(ref["x"])[0]))
    plain = torch.zeros_like(hidden_pre).scatter(-1, hidden_pre.topk(8).indices, 1.0)
    assert not torch.equal(plain, (ref["feature_acts"] != 0).float())
    values, indices = sae.encode_sparse(ref["x"])
    assert_close(sae.decode_sparse(values, indices), ref["recon"], "sparse decode")


def test_lm_saes_dataset_norm_is_the_input_scale():
    sae = load_sae(FIXTURES / "lm_saes" / "relu")
    assert float(sae.input_scale) == pytest.approx(32**0.5 / 7.5)


def test_openai_metadata():
    v5 = load_sae(next((FIXTURES / "openai" / "v5_topk").rglob("*.pt")))
    assert (v5.cfg.architecture, v5.cfg.k, v5.cfg.normalize_activations) == (
        "topk",
        8,
        "layer_norm",
    )
    assert (v5.cfg.model_name, v5.cfg.hook_name, v5.cfg.hook_layer) == (
        "gpt2",
        "blocks.6.hook_resid_post",
        6,
    )
    v1 = load_sae(next((FIXTURES / "openai" / "v1_relu").rglob("*.pt")))
    assert (v1.cfg.architecture, v1.cfg.normalize_activations) == ("standard", "none")
    assert v1.cfg.hook_name == "blocks.3.mlp.hook_post" and v1.cfg.apply_b_dec_to_input


def test_openai_outside_a_release_folder(tmp_path: Path):
    """A renamed file is still recognised by its tensor names; it just has no hook point."""
    source = next((FIXTURES / "openai" / "v5_topk").rglob("*.pt"))
    (tmp_path / "my_sae.pt").write_bytes(source.read_bytes())
    sae = load_sae(tmp_path / "my_sae.pt")
    assert sae.cfg.source_format == "openai" and sae.cfg.hook_name is None
    ref = load_file(str(FIXTURES / "openai" / "v5_topk" / "reference.safetensors"))
    assert_close(sae(ref["x"]), ref["forward"], "forward")


def test_gemma_scope_metadata_and_file_path():
    npz = next((FIXTURES / "gemma_scope").rglob("params.npz"))
    sae = load_sae(npz)
    assert (sae.cfg.architecture, sae.cfg.d_in, sae.cfg.d_sae) == ("jumprelu", 32, 128)
    assert (sae.cfg.model_name, sae.cfg.hook_name, sae.cfg.hook_layer) == (
        "gemma-2-2b",
        "blocks.5.hook_resid_post",
        5,
    )
    assert not sae.cfg.apply_b_dec_to_input and sae.cfg.normalize_activations == "none"
