"""Every hook point of every supported architecture, on tiny random models, checked against
transformers' own hidden states and the test's by-hand recomputation of each block."""

from __future__ import annotations

import copy

import pytest
import torch

from saescope.models import HookedModel, load_model
from tests.models.tiny_lms import CASES, blocks, build, sub

KINDS = [
    "hook_resid_pre",
    "hook_attn_out",
    "hook_resid_mid",
    "mlp.hook_post",
    "hook_mlp_out",
    "hook_resid_post",
]
TOL = dict(rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module", params=list(CASES))
def case(request) -> tuple[str, torch.nn.Module, HookedModel]:
    hf = build(request.param)
    return request.param, hf, load_model(hf)


@pytest.fixture(scope="module")
def tokens() -> torch.Tensor:
    return torch.randint(0, 96, (2, 12), generator=torch.Generator().manual_seed(1))


def all_acts(model: HookedModel, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    return model.run_with_cache(tokens, list(model.hook_points()), stop_early=False)


def test_hook_points_in_forward_order_with_widths(case):
    name, hf, model = case
    points = model.hook_points()
    kinds = [k for k in KINDS if not (k == "hook_resid_mid" and CASES[name].parallel)]
    assert list(points) == [f"blocks.{layer}.{k}" for layer in range(3) for k in kinds]
    assert all(w == (48 if k.endswith("mlp.hook_post") else 32) for k, w in points.items())
    assert (model.n_layers, model.d_model, model.d_vocab, model.d_mlp, model.max_context) == (
        3,
        32,
        96,
        48,
        64,
    )


def test_resid_hooks_match_hidden_states(case, tokens):
    _, hf, model = case
    acts = all_acts(model, tokens)
    with torch.no_grad():
        hidden = hf(
            tokens, output_hidden_states=True
        ).hidden_states  # [embeddings, block 0, 1, final-normed 2]
    for layer in range(3):
        torch.testing.assert_close(acts[f"blocks.{layer}.hook_resid_pre"], hidden[layer], **TOL)
    for layer in range(2):
        torch.testing.assert_close(
            acts[f"blocks.{layer}.hook_resid_post"], hidden[layer + 1], **TOL
        )
    # HF's last hidden state has the final norm applied; resid_post of the last block does not
    last = acts["blocks.2.hook_resid_post"]
    assert not torch.allclose(last, hidden[3], **TOL)
    with torch.no_grad():
        torch.testing.assert_close(
            sub(
                hf,
                "model.norm"
                if hasattr(hf, "model")
                else "transformer.ln_f"
                if hasattr(hf, "transformer")
                else "gpt_neox.final_layer_norm",
            )(last),
            hidden[3],
            **TOL,
        )


def test_sublayer_hooks_match_recomputation_by_hand(case, tokens):
    name, hf, model = case
    c = CASES[name]
    acts = all_acts(model, tokens)
    for layer, block in enumerate(blocks(hf)):
        a = {k: acts[f"blocks.{layer}.{k}"] for k in KINDS if f"blocks.{layer}.{k}" in acts}
        mlp_input = a["hook_resid_pre"] if c.parallel else a["hook_resid_mid"]
        with torch.no_grad():
            neurons = c.neurons(block.mlp, sub(block, c.mlp_norm)(mlp_input))
            mlp_out = sub(block, c.down)(neurons)
            if c.out_norm:
                mlp_out = sub(block, c.out_norm)(mlp_out)
        torch.testing.assert_close(a["mlp.hook_post"], neurons, **TOL)
        torch.testing.assert_close(a["hook_mlp_out"], mlp_out, **TOL)
        if c.parallel:  # no resid_mid: both sub-layers read resid_pre
            torch.testing.assert_close(
                a["hook_resid_post"],
                a["hook_resid_pre"] + a["hook_attn_out"] + a["hook_mlp_out"],
                **TOL,
            )
        else:
            torch.testing.assert_close(
                a["hook_resid_mid"], a["hook_resid_pre"] + a["hook_attn_out"], **TOL
            )
            torch.testing.assert_close(
                a["hook_resid_post"], a["hook_resid_mid"] + a["hook_mlp_out"], **TOL
            )


def test_stop_early_gives_the_same_activations_and_skips_later_blocks(case, tokens):
    _, hf, model = case
    hooks = [h for h in model.hook_points() if h.startswith("blocks.1.")]
    calls = []
    handle = blocks(hf)[2].register_forward_hook(lambda *_: calls.append(1))
    try:
        early = model.run_with_cache(tokens, hooks, stop_early=True)
        assert calls == []  # block 2 never ran
        full = model.run_with_cache(tokens, hooks, stop_early=False)
        assert calls == [1]
    finally:
        handle.remove()
    assert list(early) == hooks
    for h in hooks:
        assert torch.equal(early[h], full[h])


def test_identity_replacement_gives_clean_logits_and_a_change_changes_them(case, tokens):
    _, _, model = case
    clean = model.forward(tokens)
    for hook in [h for h in model.hook_points() if h.startswith("blocks.1.")]:
        same = model.run_with_replacement(tokens, {hook: lambda x: x})
        torch.testing.assert_close(same, clean, rtol=0, atol=0)
        changed = model.run_with_replacement(tokens, {hook: lambda x: 1.5 * x + 0.1})
        assert not torch.allclose(changed, clean, atol=1e-3), hook


def _zeroed(hf: torch.nn.Module, layer: int, path: str, bias: bool) -> torch.nn.Module:
    copy_ = copy.deepcopy(hf)
    proj = sub(blocks(copy_)[layer], path)
    with torch.no_grad():
        proj.weight.zero_()
        if bias and getattr(proj, "bias", None) is not None:
            proj.bias.zero_()
    return copy_


def test_zero_ablations_equal_models_with_zeroed_weights(case, tokens):
    name, hf, model = case
    c = CASES[name]
    with torch.no_grad():
        no_mlp = _zeroed(hf, 0, c.down, bias=True)(tokens).logits
        no_neurons = _zeroed(hf, 0, c.down, bias=False)(tokens).logits  # bias still added
        no_attn = _zeroed(hf, 1, c.attn_proj, bias=True)(tokens).logits
    zero = torch.zeros_like
    torch.testing.assert_close(
        model.run_with_replacement(tokens, {"blocks.0.hook_mlp_out": zero}), no_mlp, **TOL
    )
    torch.testing.assert_close(
        model.run_with_replacement(tokens, {"blocks.0.mlp.hook_post": zero}), no_neurons, **TOL
    )
    torch.testing.assert_close(
        model.run_with_replacement(tokens, {"blocks.1.hook_attn_out": zero}), no_attn, **TOL
    )


def test_residual_replacements(case, tokens):
    name, hf, model = case
    c = CASES[name]

    def f(x):
        return 0.7 * x + 0.05

    # resid_pre of block 1 and resid_post of block 0 are the same tensor
    torch.testing.assert_close(
        model.run_with_replacement(tokens, {"blocks.1.hook_resid_pre": f}),
        model.run_with_replacement(tokens, {"blocks.0.hook_resid_post": f}),
        **TOL,
    )
    # replacing the last resid_post: the logits are the unembedding of the replaced residual
    last = model.run_with_cache(tokens, ["blocks.2.hook_resid_post"])["blocks.2.hook_resid_post"]
    torch.testing.assert_close(
        model.run_with_replacement(tokens, {"blocks.2.hook_resid_post": f}),
        model.unembed(f(last)),
        **TOL,
    )
    if c.parallel:
        return
    # resid_mid replaced: the MLP reads f(mid) and the skip connection carries f(mid)
    mid = model.run_with_cache(tokens, ["blocks.1.hook_resid_mid"])["blocks.1.hook_resid_mid"]
    post = model.run_with_cache(
        tokens, ["blocks.1.hook_resid_post"], replacements={"blocks.1.hook_resid_mid": f}
    )
    block = blocks(hf)[1]
    with torch.no_grad():
        mlp_out = sub(block, c.down)(c.neurons(block.mlp, sub(block, c.mlp_norm)(f(mid))))
        if c.out_norm:
            mlp_out = sub(block, c.out_norm)(mlp_out)
    torch.testing.assert_close(post["blocks.1.hook_resid_post"], f(mid) + mlp_out, **TOL)


def test_unembed_of_last_resid_post_is_the_logits(case, tokens):
    _, _, model = case
    last = model.run_with_cache(tokens, ["blocks.2.hook_resid_post"])["blocks.2.hook_resid_post"]
    with torch.no_grad():
        torch.testing.assert_close(model.unembed(last), model.forward(tokens), **TOL)


def test_W_U_and_direction_logits(case):
    name, hf, model = case
    head = hf.get_output_embeddings().weight  # [d_vocab, d_model]
    assert model.W_U.shape == (32, 96) and torch.equal(model.W_U, head.T)
    if hf.config.tie_word_embeddings:
        assert torch.equal(model.W_U, hf.get_input_embeddings().weight.T)
    # adding v to the final residual moves the logits by (scale of the norm) x direction_logits(v)
    v = 50 * torch.randn(5, 32, generator=torch.Generator().manual_seed(2))
    norm = model.final_norm
    with torch.no_grad():
        normed = norm(v)
        if isinstance(norm, torch.nn.LayerNorm):
            normed = normed - norm.bias
            scale = (v.var(-1, unbiased=False, keepdim=True) + norm.eps).sqrt()
        else:
            scale = v.pow(2).mean(-1, keepdim=True).sqrt()
        expected = scale * (normed @ head.T)
        got = model.direction_logits(v)
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(
        model.direction_logits(2 * v[0] - v[1]), 2 * got[0] - got[1], rtol=1e-4, atol=1e-3
    )
