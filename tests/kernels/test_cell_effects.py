"""The C++ cell-effects kernel gives what the torch path gives (effects_from_diff on the addcmul diff),
on real cells: SmolLM2's final residuals of corpus contexts, a real-direction SAE's features active
there, their real direction logits and the DirectPath's scalars."""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch

from saescope import kernels
from saescope.analysis import effects
from saescope.analysis.directions import residual_directions
from saescope.analysis.effects import (
    DirectPath,
    LogprobEffects,
    diff_from_scales,
    direct_effects,
    effects_from_diff,
)
from saescope.corpus import CorpusConfig, iter_context_batches
from tests.sae_builders import topk_sae_from_activations

HOOK = "blocks.3.hook_resid_post"


@pytest.fixture(scope="module")
@torch.no_grad()
def cells(smollm2):
    """Clean logits [P, V] and lse [P] of 2 x 32 real positions, direction logits D [96, V], and the
    active (position, feature) cells with their scalars a, b and next tokens (-1 at a context's end)."""
    model = smollm2
    sae = topk_sae_from_activations(model, HOOK, 96, 8, corpus_seed=1000)
    tokens = next(iter(iter_context_batches(CorpusConfig(context_length=32), model.tokenizer, 2)))
    final_hook = f"blocks.{model.n_layers - 1}.hook_resid_post"
    cache = model.run_with_cache(tokens, [HOOK, final_hook])
    acts = sae.encode(cache[HOOK]).float().reshape(-1, sae.cfg.d_sae)
    acts[::32] = 0  # BOS positions: not analysed
    resid = cache[final_hook].reshape(-1, model.d_model)
    logits = model.unembed(resid).float()
    directions = residual_directions(model, sae).float()
    pos, feat = torch.nonzero(acts > 0, as_tuple=True)
    direct = DirectPath(model)
    alpha = acts[pos, feat]  # a TopK SAE without normalisation adds act * W_dec[f]
    a, b = direct.scales(resid[pos], direct.removed(resid[pos], alpha, directions[feat]), alpha)
    next_ids = torch.cat([tokens[:, 1:], torch.full((2, 1), -1)], 1).reshape(-1)[pos]
    return dict(
        logits=logits,
        lse=torch.logsumexp(logits, -1),
        D=model.direction_logits(directions).float(),
        pos=pos,
        feat=feat,
        a=a[:, 0],
        b=b[:, 0],
        beta=direct.beta,
        next_ids=next_ids,
    )


def reference(c: dict, beta: torch.Tensor | None, h: int) -> tuple[LogprobEffects, torch.Tensor]:
    """The torch path, and the diff it is made from."""
    with_f = c["logits"][c["pos"]]
    diff = diff_from_scales(with_f, beta, c["a"][:, None], c["b"][:, None], c["D"][c["feat"]])
    shift = torch.logsumexp(with_f - diff, -1) - c["lse"][c["pos"]]
    return effects_from_diff(diff, shift, c["next_ids"], h), diff


def assert_same_effects(got: LogprobEffects, want: LogprobEffects, diff: torch.Tensor) -> None:
    """Values allclose; ids may differ on (near) ties only: the diff at the chosen ids is the wanted top."""
    shift = want.boosted_values[:, :1] - diff.gather(1, want.boosted_ids[:, :1])
    torch.testing.assert_close(got.next_token, want.next_token, atol=2e-5, rtol=1e-5)
    for ids, values in (("boosted_ids", "boosted_values"), ("suppressed_ids", "suppressed_values")):
        torch.testing.assert_close(
            getattr(got, values), getattr(want, values), atol=2e-5, rtol=1e-5
        )
        chosen = diff.gather(1, getattr(got, ids)) + shift
        torch.testing.assert_close(chosen, getattr(want, values), atol=2e-5, rtol=1e-5)
        assert (getattr(got, ids) == getattr(want, ids)).float().mean() > 0.99  # the rest: ties


@pytest.mark.parametrize("h", [1, 3])
@pytest.mark.parametrize("with_beta", [True, False])
@pytest.mark.parametrize(
    "table", [True, False]
)  # the kept table, or one chunk's D rows (feat = arange)
def test_kernel_equals_the_torch_path_on_real_cells(cells, h, with_beta, table):
    c = dict(cells)
    beta = None
    if with_beta:  # SmolLM2's beta is 0 (RMSNorm, a head without bias): one of realistic size, so that it matters
        beta = c["beta"] + 0.1 * torch.randn(
            len(c["beta"]), generator=torch.Generator().manual_seed(0)
        )
    if not table:
        c["D"], c["feat"] = c["D"][c["feat"]], torch.arange(len(c["feat"]))
    assert len(c["pos"]) > 100 and (c["next_ids"] < 0).any()
    want, diff = reference(c, beta, h)
    got = LogprobEffects(
        *kernels.cell_effects(
            c["logits"],
            c["lse"],
            c["D"],
            c["pos"],
            c["feat"],
            c["a"],
            c["b"],
            beta,
            c["next_ids"],
            h,
        )
    )
    assert_same_effects(got, want, diff)
    assert torch.all(got.next_token[c["next_ids"] < 0] == 0)


def test_torch_fallback_of_direct_effects_equals_the_kernel(cells, monkeypatch):
    c = cells
    args = (
        c["logits"],
        c["lse"],
        c["D"],
        c["pos"],
        c["feat"],
        c["a"],
        c["b"],
        None,
        c["next_ids"],
        3,
    )
    fused = direct_effects(*args)
    monkeypatch.setattr(effects.kernels, "available", lambda: False)
    fallback = direct_effects(*args)
    assert_same_effects(fused, fallback, reference(c, None, 3)[1])


def test_empty_cells_and_other_dtypes():
    logits, D = torch.randn(2, 50), torch.randn(3, 50)
    none = torch.zeros(0, dtype=torch.long)
    got = direct_effects(
        logits,
        torch.logsumexp(logits, -1),
        D,
        none,
        none,
        torch.zeros(0),
        torch.zeros(0),
        None,
        none,
        2,
    )
    assert got.boosted_ids.shape == (0, 2)
    pos, feat, next_ids = torch.tensor([0, 1]), torch.tensor([2, 0]), torch.tensor([5, -1])
    a, b = torch.tensor([0.1, -0.2]), torch.tensor([1.0, 0.5])
    f64 = direct_effects(
        logits.double(),
        torch.logsumexp(logits.double(), -1),
        D.double(),
        pos,
        feat,
        a.double(),
        b.double(),
        None,
        next_ids,
        2,
    )  # torch's path
    f32 = direct_effects(logits, torch.logsumexp(logits, -1), D, pos, feat, a, b, None, next_ids, 2)
    for field in fields(LogprobEffects):
        torch.testing.assert_close(
            getattr(f32, field.name), getattr(f64, field.name), check_dtype=False
        )


def test_nan_gives_nan_shift_and_is_never_picked():
    logits, D = torch.randn(1, 3000), torch.randn(2, 3000)
    D[0, 10] = float("nan")
    lse = torch.logsumexp(logits, -1)
    one = torch.tensor([1.0, 1.0])
    next_token, up_ids, up_values, down_ids, _ = kernels.cell_effects(
        logits,
        lse,
        D,
        torch.tensor([0, 0]),
        torch.tensor([0, 1]),
        0 * one,
        one,
        None,
        torch.tensor([3, 3]),
        3,
    )
    assert (
        torch.isnan(next_token[0]) and torch.isnan(up_values[0]).all()
    )  # lse of a row with NaN is NaN
    assert 10 not in up_ids[0].tolist() and 10 not in down_ids[0].tolist()
    assert torch.isfinite(next_token[1]) and torch.isfinite(up_values[1]).all()


def test_ties_go_to_the_lower_id():
    logits, D = torch.zeros(1, 2000), torch.zeros(1, 2000)
    D[0, [1500, 7, 900]] = 2.0
    out = kernels.cell_effects(
        logits,
        torch.logsumexp(logits, -1),
        D,
        torch.tensor([0]),
        torch.tensor([0]),
        torch.zeros(1),
        torch.ones(1),
        None,
        torch.tensor([-1]),
        2,
    )
    assert out[1].tolist() == [[7, 900]] and out[3].tolist() == [[0, 1]]


def test_bad_arguments_are_refused_with_the_range():
    logits, D, one = torch.zeros(2, 16), torch.zeros(3, 16), torch.ones(1)
    with pytest.raises(RuntimeError, match=r"h must be in \[1, 16\], got 17"):
        kernels.cell_effects(
            logits,
            logits[:, 0],
            D,
            torch.tensor([0]),
            torch.tensor([0]),
            one,
            one,
            None,
            torch.tensor([0]),
            17,
        )
    with pytest.raises(RuntimeError, match=r"cell_feat must be in \[0, 3\)"):
        kernels.cell_effects(
            logits,
            logits[:, 0],
            D,
            torch.tensor([0]),
            torch.tensor([3]),
            one,
            one,
            None,
            torch.tensor([0]),
            2,
        )
