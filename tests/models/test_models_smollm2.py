"""The real bundled SmolLM2-135M-Instruct: dimensions, hook widths, hooks against transformers'
hidden states, unembedding and replacement."""

from __future__ import annotations

import torch

from saescope.models import load_tokenizer
from saescope.models.loading import cache_root

TOL = dict(rtol=1e-4, atol=1e-4)


def test_dimensions_and_hook_widths(smollm2):
    m = smollm2
    assert (m.n_layers, m.d_model, m.d_vocab, m.d_mlp, m.max_context) == (
        30,
        576,
        49152,
        1536,
        8192,
    )
    assert m.architecture == "LlamaForCausalLM" and m.name == "smollm2"
    assert m.dtype == torch.float32 and m.device == torch.device("cpu")
    points = m.hook_points()
    assert len(points) == 30 * 6
    assert points["blocks.0.hook_resid_pre"] == 576 and points["blocks.29.hook_resid_post"] == 576
    assert points["blocks.6.mlp.hook_post"] == 1536 and points["blocks.6.hook_mlp_out"] == 576
    assert list(points)[:3] == [
        "blocks.0.hook_resid_pre",
        "blocks.0.hook_attn_out",
        "blocks.0.hook_resid_mid",
    ]


def test_tokenizer_and_to_tokens(smollm2, smollm2_tokenizer):
    tok = smollm2.tokenizer
    assert (tok.bos_token, tok.bos_token_id, tok.eos_token, tok.eos_token_id) == (
        "<|im_start|>",
        1,
        "<|im_end|>",
        2,
    )
    tokens = smollm2.to_tokens(["The capital of France is", "Hi"])
    assert tokens.dtype == torch.long and tokens.shape[0] == 2
    assert tokens[:, 0].tolist() == [1, 1]
    assert tokens[0, 1:].tolist() == smollm2_tokenizer.encode(
        "The capital of France is", add_special_tokens=False
    )
    assert smollm2.to_tokens("Hi", prepend_bos=False)[0].tolist() == smollm2_tokenizer.encode(
        "Hi", add_special_tokens=False
    )
    # the real model knows this one
    logits = smollm2.forward(smollm2.to_tokens("The capital of France is"))
    assert tok.decode(logits[0, -1].argmax()) == " Paris"


def test_resid_hooks_match_hidden_states_and_unembed_gives_logits(smollm2):
    tokens = smollm2.to_tokens("Sparse autoencoders find features in the residual stream.")
    hooks = ["blocks.0.hook_resid_pre", "blocks.6.hook_resid_post", "blocks.29.hook_resid_post"]
    acts = smollm2.run_with_cache(tokens, hooks, stop_early=False)
    with torch.no_grad():
        out = smollm2.hf_model(tokens, output_hidden_states=True)
    hidden = out.hidden_states
    torch.testing.assert_close(acts[hooks[0]], hidden[0], **TOL)
    torch.testing.assert_close(acts[hooks[1]], hidden[7], **TOL)
    with torch.no_grad():  # HF's last hidden state is after the final norm
        torch.testing.assert_close(smollm2.final_norm(acts[hooks[2]]), hidden[30], **TOL)
        torch.testing.assert_close(smollm2.unembed(acts[hooks[2]]), out.logits, **TOL)
    assert torch.equal(
        smollm2.W_U, smollm2.hf_model.get_input_embeddings().weight.T
    )  # tied embeddings


def test_stop_early_and_identity_replacement(smollm2):
    tokens = smollm2.to_tokens(["Hello there, how are you today?", "def f(x): return x"])
    hooks = ["blocks.6.hook_resid_post", "blocks.3.mlp.hook_post", "blocks.5.hook_resid_mid"]
    early = smollm2.run_with_cache(tokens, hooks)
    full = smollm2.run_with_cache(tokens, hooks, stop_early=False)
    assert early["blocks.3.mlp.hook_post"].shape == (2, tokens.shape[1], 1536)
    for h in hooks:
        assert torch.equal(early[h], full[h])
    clean = smollm2.forward(tokens)
    replaced = smollm2.run_with_replacement(tokens, {h: (lambda x: x) for h in hooks})
    torch.testing.assert_close(replaced, clean, rtol=0, atol=0)
    ablated = smollm2.run_with_replacement(tokens, {"blocks.3.hook_mlp_out": torch.zeros_like})
    assert (ablated - clean).abs().max() > 0.1


def test_cached_weights_and_cheap_tokenizer(smollm2):
    cached = cache_root() / "smollm2"
    assert (cached / "config.json").is_file() and (cached / "model.safetensors").is_file()
    assert not [p for p in cached.parent.iterdir() if ".tmp-" in p.name]  # no half-written cache
    tok = load_tokenizer("smollm2")
    assert tok.encode("Hello world") == smollm2.tokenizer.encode("Hello world")
