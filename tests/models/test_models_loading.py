"""Loading from a local directory, an HF model object and the hub (offline, on a hub cache the
test builds), and clear errors for bad specs, hooks and context lengths."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import transformers as tf

from saescope.cli import main
from saescope.errors import SaescopeError
from saescope.models import load_model, load_tokenizer
from tests.models.tiny_lms import build

REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, smollm2_tokenizer) -> Path:
    """A tiny Llama with SmolLM2's vocabulary and tokenizer, saved as save_pretrained writes it."""
    torch.manual_seed(0)
    config = tf.LlamaConfig(
        vocab_size=49152,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
        bos_token_id=1,
        eos_token_id=2,
    )
    path = tmp_path_factory.mktemp("tiny-llama")
    tf.LlamaForCausalLM(config).save_pretrained(path)
    smollm2_tokenizer.save_pretrained(path)
    return path


def test_load_local_directory(tiny_dir):
    model = load_model(str(tiny_dir))
    assert (
        model.name == str(tiny_dir)
        and model.architecture == "LlamaForCausalLM"
        and model.n_layers == 2
    )
    tokens = model.to_tokens("Hello world")
    assert tokens[0, 0] == 1
    reference = tf.AutoModelForCausalLM.from_pretrained(tiny_dir).eval()
    with torch.no_grad():
        torch.testing.assert_close(model.forward(tokens), reference(tokens).logits)
    assert load_tokenizer(str(tiny_dir)).encode("Hello") == model.tokenizer.encode("Hello")


def test_local_directory_without_tokenizer_runs_on_token_ids(tmp_path):
    build("llama").save_pretrained(tmp_path)
    model = load_model(tmp_path, dtype="float64")
    assert model.tokenizer is None and model.dtype == torch.float64
    assert model.forward(torch.tensor([[1, 2, 3]])).shape == (1, 3, 96)
    with pytest.raises(SaescopeError, match="has no tokenizer"):
        model.to_tokens("text")


def test_load_hf_model_object():
    hf = build("gpt2")
    model = load_model(hf)
    assert model.hf_model is hf and model.architecture == "GPT2LMHeadModel"
    with torch.no_grad():
        torch.testing.assert_close(
            model.forward(torch.tensor([[5, 6, 7]])), hf(torch.tensor([[5, 6, 7]])).logits
        )


@pytest.fixture
def hub(tmp_path, monkeypatch, tiny_dir) -> Path:
    """huggingface_hub's cache layout: models--ORG--NAME/{refs/main, snapshots/<rev>/...}."""
    cache = tmp_path / "hub"
    snapshot = cache / "models--saescope-test--tiny-llama" / "snapshots" / REVISION
    shutil.copytree(tiny_dir, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text(REVISION)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_load_hub_id_offline_from_the_hub_cache(hub, tiny_dir):
    model = load_model("saescope-test/tiny-llama")
    local = load_model(tiny_dir)
    tokens = model.to_tokens("Hello world")
    assert model.name == "saescope-test/tiny-llama"
    torch.testing.assert_close(model.forward(tokens), local.forward(tokens))


def test_unknown_hub_id_is_a_clear_error(hub):
    with pytest.raises(
        SaescopeError,
        match=r"could not load 'saescope-test/missing' from the Hugging Face hub.*HF_HUB_OFFLINE",
    ):
        load_model("saescope-test/missing")
    with pytest.raises(SaescopeError, match="saescope-test/missing"):
        load_tokenizer("saescope-test/missing")


def test_bad_model_specs(tmp_path):
    with pytest.raises(
        SaescopeError, match=r"model: got './no-such-model'; expected an existing model directory"
    ):
        load_model("./no-such-model")
    with pytest.raises(
        SaescopeError, match=r"model: got '.*missing.gguf'; expected an existing .gguf file"
    ):
        load_model(str(tmp_path / "missing.gguf"))
    with pytest.raises(SaescopeError, match="config.json"):
        load_model(tmp_path)  # a directory, but not a model
    with pytest.raises(SaescopeError, match="model: got 'int'"):
        load_model(42)
    opt = tf.OPTForCausalLM(
        tf.OPTConfig(
            vocab_size=64,
            hidden_size=16,
            num_hidden_layers=1,
            ffn_dim=32,
            num_attention_heads=2,
            word_embed_proj_dim=16,
        )
    )
    with pytest.raises(SaescopeError, match=r"architecture 'opt' .*not supported.*llama"):
        load_model(opt)
    with pytest.raises(SaescopeError, match="dtype: got 'float33'"):
        load_model(build("llama"), dtype="float33")


def test_unknown_hook_lists_the_valid_ones(smollm2):
    with pytest.raises(SaescopeError) as err:
        smollm2.check_hooks(
            ["blocks.6.hook_resid_post", "blocks.30.hook_resid_post", "blocks.0.hook_resid"]
        )
    message = str(err.value)
    assert (
        "'blocks.30.hook_resid_post', 'blocks.0.hook_resid' is not a hook point of smollm2"
        in message
    )
    assert (
        "blocks.{0-29}.hook_resid_post  (width 576)" in message
        and "blocks.{0-29}.mlp.hook_post  (width 1536)" in message
    )
    assert "blocks.6.hook_resid_post'" not in message.split("Valid")[0]
    with pytest.raises(SaescopeError, match="blocks.31.hook_mlp_out"):
        smollm2.run_with_cache(smollm2.to_tokens("hi"), ["blocks.31.hook_mlp_out"])
    with pytest.raises(SaescopeError, match="blocks.0.hook_nope"):
        smollm2.run_with_replacement(smollm2.to_tokens("hi"), {"blocks.0.hook_nope": lambda x: x})


def test_context_too_long():
    model = load_model(build("neox_parallel"))
    assert "blocks.0.hook_resid_mid" not in model.hook_points()  # parallel attention + MLP
    model.check_context_length(64)
    with pytest.raises(SaescopeError, match="context_length: got 65; .* at most 64 tokens"):
        model.check_context_length(65)
    with pytest.raises(SaescopeError, match="at most 64 tokens"):
        model.run_with_cache(torch.zeros(1, 65, dtype=torch.long), ["blocks.0.hook_resid_post"])
    with pytest.raises(SaescopeError, match=r"tokens: expected a LongTensor \[batch, ctx\]"):
        model.forward(torch.zeros(5, dtype=torch.long))


def test_cli_models_hooks(capsys):
    assert main(["models", "hooks", "smollm2"]) == 0
    out = capsys.readouterr().out
    assert "smollm2: LlamaForCausalLM, 30 layers, d_model 576, d_mlp 1536" in out
    assert (
        "blocks.{0-29}.hook_resid_pre  (width 576)" in out
        and "blocks.{0-29}.mlp.hook_post  (width 1536)" in out
    )
    assert main(["models", "hooks", "smollm2", "--all"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        len(lines) == 1 + 180
        and lines[1] == "blocks.0.hook_resid_pre\t576"
        and lines[-1] == "blocks.29.hook_resid_post\t576"
    )


def test_cli_bad_model_is_one_paragraph(capsys):
    assert main(["models", "hooks", "./no-such-model"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("saescope models: error: model: got './no-such-model'")
        and "Traceback" not in err
    )


def test_damaged_gguf_cache_says_how_to_rebuild_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SAESCOPE_CACHE", str(tmp_path))
    damaged = tmp_path / "models" / "smollm2"
    damaged.mkdir(parents=True)
    (damaged / "config.json").write_text("{not json")
    with pytest.raises(
        SaescopeError,
        match=r"could not load 'smollm2' .*cache of a GGUF file: delete it to rebuild it",
    ):
        load_model("smollm2")
