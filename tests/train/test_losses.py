"""Dead-latent handling in the losses: AuxK for TopK, resampling for L1 SAEs."""

from __future__ import annotations

import pytest
import torch

from saescope.sae import SAEConfig, build_sae
from saescope.sae.architectures.topk import topk_loss
from saescope.sae.training.losses import LossSettings
from saescope.train.init import init_weights
from saescope.train.optimizer import SAEAdam
from saescope.train.resample import resample_dead
from saescope.train.trainer import store_latent_major


def topk_sae(d_sae: int = 1152, k: int = 16):
    sae = build_sae(SAEConfig(architecture="topk", d_in=576, d_sae=d_sae, k=k))
    init_weights(sae, torch.Generator().manual_seed(0))
    return sae


def test_auxk_trains_only_dead_latents_toward_the_residual(layer6_acts):
    x = layer6_acts[:512]
    sae = topk_sae()
    dead = torch.zeros(1152, dtype=torch.bool)
    dead[::3] = True
    without = topk_loss(sae, x, LossSettings(k=16, aux_k_coefficient=0.0, dead=dead))
    without.loss.backward()
    main_grad = sae.W_enc.grad.clone()
    sae.zero_grad()

    out = topk_loss(sae, x, LossSettings(k=16, aux_k=64, aux_k_coefficient=1.0, dead=dead))
    assert 0 < float(out.aux_loss) < 2
    out.loss.backward()
    aux_grad = sae.W_enc.grad - main_grad  # [576, 1152]: what AuxK added
    assert aux_grad[:, ~dead].abs().max() < 1e-6
    assert (aux_grad[:, dead].abs().sum(0) > 0).sum() >= 64


def test_auxk_is_zero_without_dead_latents(layer6_acts):
    out = topk_loss(
        topk_sae(), layer6_acts[:256], LossSettings(k=16, dead=torch.zeros(1152, dtype=torch.bool))
    )
    assert float(out.aux_loss) == 0


def test_resampling_points_dead_latents_at_badly_reconstructed_inputs(layer6_acts):
    x = layer6_acts[:1024]
    sae = build_sae(SAEConfig(architecture="standard", d_in=576, d_sae=1152))
    init_weights(sae, torch.Generator().manual_seed(0))
    store_latent_major(sae)  # as the trainer stores it: Adam steps W_enc through its alias
    optimizer = SAEAdam(sae.parameters())
    sae(x).pow(2).sum().backward()
    optimizer.step()  # moments exist
    dead = torch.zeros(1152, dtype=torch.bool)
    dead[:100] = True
    before = sae.W_dec[100:].clone()
    assert resample_dead(sae, optimizer, x, dead, torch.Generator().manual_seed(0)) == 100
    assert torch.equal(sae.W_dec[100:], before)
    for param, dead_part, live_part in (
        (sae.W_enc, (slice(None), dead), (slice(None), ~dead)),
        (sae.W_dec, (dead,), (~dead,)),
    ):
        for moment in optimizer.moments(param):  # fresh moments for the resampled latents only
            assert moment[dead_part].abs().max() == 0 and moment[live_part].abs().max() > 0
    # each new decoder row is the direction of some input (minus b_dec)
    directions = (x - sae.b_dec) / (x - sae.b_dec).norm(dim=-1, keepdim=True)
    best = (sae.W_dec[:100] @ directions.T).max(dim=1).values
    assert torch.allclose(best, torch.ones(100), atol=1e-5)
    with torch.no_grad():
        acts = sae.encode(x)
    assert (acts[:, :100] > 0).any(dim=0).all()  # the resampled latents fire again


def test_relu_loss_gradients_equal_the_textbook_formula():
    """standard_loss computes the encoder as x @ W_enc + (b_enc - b_dec @ W_enc) and counts L0 and
    firing without int64 masks; loss, every gradient, L0 and fire counts equal the direct formula."""
    from torch.nn import functional as F

    from saescope.sae.architectures.standard import standard_loss

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 16, dtype=torch.float64, generator=gen)
    sae = build_sae(SAEConfig(architecture="standard", d_in=16, d_sae=64)).double()
    with torch.no_grad():
        for param in sae.parameters():
            param.copy_(torch.randn(param.shape, dtype=torch.float64, generator=gen))
    out = standard_loss(sae, x, LossSettings(l1_coefficient=0.3))
    acts = F.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc)
    direct = (acts @ sae.W_dec + sae.b_dec - x).pow(2).sum(-1).mean() + 0.3 * acts.sum(-1).mean()
    params = list(sae.parameters())
    for ours, theirs in zip(
        torch.autograd.grad(out.loss, params), torch.autograd.grad(direct, params), strict=True
    ):
        assert torch.allclose(ours, theirs, atol=1e-10)
    assert float(out.loss.detach()) == pytest.approx(float(direct.detach()), abs=1e-10)
    assert float(out.l0) == pytest.approx(float((acts > 0).sum(-1).double().mean()))
    assert torch.equal(out.fire_counts, (acts > 0).sum(0))


def test_decoder_init_norm_scales_the_decoder_rows_only():
    """SAELens's free-norm ReLU SAEs start their decoder rows at norm 0.1; the encoder keeps its scale."""
    saes = []
    for norm in (1.0, 0.1):
        sae = build_sae(SAEConfig(architecture="standard", d_in=16, d_sae=64))
        init_weights(sae, torch.Generator().manual_seed(0), decoder_norm=norm)
        saes.append(sae)
    torch.testing.assert_close(saes[1].W_dec.norm(dim=-1), torch.full((64,), 0.1))
    torch.testing.assert_close(saes[1].W_dec, 0.1 * saes[0].W_dec)
    torch.testing.assert_close(saes[1].W_enc, saes[0].W_enc)
