"""A TransformerLens HookedTransformer behind the HookedModel interface (runs where
transformer_lens < 4 is installed; it is not a saescope dependency)."""

from __future__ import annotations

import pytest
import torch

from saescope.models import load_model

tl = pytest.importorskip("transformer_lens")
if not hasattr(tl, "HookedTransformerConfig"):
    pytest.skip("TransformerLens 4 removed HookedTransformer", allow_module_level=True)

TOL = dict(rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module", params=["LN", "RMS"])
def tl_model(request):
    torch.manual_seed(0)
    cfg = tl.HookedTransformerConfig(
        n_layers=3,
        d_model=32,
        n_ctx=64,
        d_head=8,
        d_vocab=96,
        d_mlp=48,
        act_fn="gelu",
        normalization_type=request.param,
    )
    model = tl.HookedTransformer(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(mean=1.0 if p.ndim == 1 else 0.0, std=0.3 if p.ndim == 1 else 0.15)
    return model


@pytest.fixture(scope="module")
def tokens():
    return torch.randint(0, 96, (2, 10), generator=torch.Generator().manual_seed(1))


def test_hooks_are_transformer_lens_own(tl_model, tokens):
    model = load_model(tl_model)
    assert model.hf_model is None and (
        model.n_layers,
        model.d_model,
        model.d_mlp,
        model.max_context,
    ) == (3, 32, 48, 64)
    hooks = list(model.hook_points())
    assert len(hooks) == 18
    _, reference = tl_model.run_with_cache(tokens)
    early = model.run_with_cache(tokens, [h for h in hooks if h.startswith("blocks.1.")])
    full = model.run_with_cache(tokens, hooks, stop_early=False)
    for h in hooks:
        torch.testing.assert_close(full[h], reference[h], rtol=0, atol=0)
    for h, act in early.items():
        torch.testing.assert_close(act, reference[h], **TOL)


def test_replacement_unembed_and_direction_logits(tl_model, tokens):
    model = load_model(tl_model)
    clean = model.forward(tokens)
    torch.testing.assert_close(
        model.run_with_replacement(tokens, {"blocks.1.hook_mlp_out": lambda x: x}),
        clean,
        rtol=0,
        atol=0,
    )
    ablated = model.run_with_replacement(tokens, {"blocks.0.hook_mlp_out": torch.zeros_like})
    expected = tl_model.run_with_hooks(
        tokens, fwd_hooks=[("blocks.0.hook_mlp_out", lambda act, hook: act * 0)]
    )
    torch.testing.assert_close(ablated, expected, **TOL)
    last = model.run_with_cache(tokens, ["blocks.2.hook_resid_post"])["blocks.2.hook_resid_post"]
    with torch.no_grad():
        torch.testing.assert_close(model.unembed(last), clean, **TOL)
    v = torch.randn(4, 32)
    expected = v - v.mean(-1, keepdim=True) if model.final_norm_centers() else v
    torch.testing.assert_close(
        model.direction_logits(v), (expected * tl_model.ln_final.w) @ tl_model.W_U, **TOL
    )
