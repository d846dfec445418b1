"""The fast ReLU+L1 path (sparse while few latents fire, dense scatter while many do) gives
the same loss and gradients as plain dense autograd, through both of its regimes."""

from __future__ import annotations

import pytest
import torch

from saescope.sae import SAEConfig, build_sae
from saescope.sae.architectures.standard import standard_loss
from saescope.sae.training import sparse_relu
from saescope.sae.training.losses import LossSettings
from saescope.train.trainer import store_latent_major


def relu_sae(d_in: int, d_sae: int, dtype: torch.dtype, b_enc: float, seed: int = 0):
    torch.manual_seed(seed)
    sae = build_sae(SAEConfig(architecture="standard", d_in=d_in, d_sae=d_sae)).to(dtype)
    with torch.no_grad():
        sae.W_dec.normal_()
        sae.W_dec /= sae.W_dec.norm(dim=-1, keepdim=True)
        sae.W_enc.copy_(sae.W_dec.T * 0.8 + 0.05 * torch.randn_like(sae.W_enc))
        sae.b_enc.fill_(b_enc)  # negative: most latents silent, as after some L1 training
        sae.b_dec.normal_(0, 0.1)
    return sae


def dense_standard_loss(sae, x: torch.Tensor, s: LossSettings) -> torch.Tensor:
    acts = torch.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc)
    recon = acts @ sae.W_dec + sae.b_dec
    mse = (recon - x).pow(2).sum(-1).mean()
    weights = acts if s.decoder_unit_norm else acts * sae.W_dec.norm(dim=-1)
    return mse + s.l1_coefficient * weights.sum(-1).mean()


def grads(sae, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    return dict(
        zip(
            [n for n, _ in sae.named_parameters()],
            torch.autograd.grad(loss, list(sae.parameters())),
            strict=True,
        )
    )


@pytest.mark.parametrize("regime", ["sparse", "dense"])
@pytest.mark.parametrize("unit_norm", [True, False])
def test_gradients_equal_dense_autograd_float64(layer6_acts, regime, unit_norm):
    x = layer6_acts[:256].double()
    sae = relu_sae(576, 576 * 4, torch.float64, b_enc=-2.0 if regime == "sparse" else 0.5)
    s = LossSettings(l1_coefficient=0.3, decoder_unit_norm=unit_norm)
    out = standard_loss(sae, x, s)
    density = float(out.l0) / sae.d_sae
    assert (density > sparse_relu.DENSE_ABOVE) == (regime == "dense"), (
        density
    )  # the regime asked for
    expected = dense_standard_loss(sae, x, s)
    torch.testing.assert_close(out.loss, expected, rtol=1e-12, atol=1e-12)
    got, want = grads(sae, out.loss), grads(sae, expected)
    for name in want:
        torch.testing.assert_close(
            got[name], want[name], rtol=1e-10, atol=1e-12, msg=f"gradient of {name} differs"
        )
    acts = torch.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc)
    assert torch.equal(out.fire_counts, (acts > 0).sum(0))
    assert float(out.l0) == pytest.approx(float((acts > 0).sum(-1).double().mean()))


def test_latent_major_encoder_trains_the_same_as_row_major(layer6_acts):
    """Adam steps with W_enc kept latent-major (as the trainer does) give the weights of the
    usual layout, with steps in both regimes."""
    x = layer6_acts[:512]
    trained = []
    for latent_major in (False, True):
        sae = relu_sae(576, 2048, torch.float32, b_enc=0.3, seed=1)
        if latent_major:
            store_latent_major(sae)
        optimizer = torch.optim.Adam(sae.parameters(), lr=3e-2)
        densities = []
        for _ in range(6):
            out = standard_loss(sae, x, LossSettings(l1_coefficient=3.0))
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            assert sae.W_enc.grad.stride() == sae.W_enc.stride()
            optimizer.step()
            densities.append(float(out.l0) / sae.d_sae)
        trained.append(sae.W_enc.detach().contiguous())
    assert max(densities) > sparse_relu.DENSE_ABOVE > min(densities), densities  # both regimes ran
    assert torch.allclose(trained[0], trained[1], atol=1e-5)
