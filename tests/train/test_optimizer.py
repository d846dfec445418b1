"""SAEAdam steps a latent-major W_enc through its contiguous alias: same numbers as Adam on a plain W_enc."""

from __future__ import annotations

import torch

from saescope.sae import SAEConfig, build_sae
from saescope.sae.architectures.topk import topk_loss
from saescope.sae.training.losses import LossSettings
from saescope.train.init import init_weights
from saescope.train.optimizer import SAEAdam
from saescope.train.trainer import fused_adam_ok, store_latent_major


def train(
    latent_major: bool, x: torch.Tensor, steps: int = 4
) -> tuple[dict[str, torch.Tensor], SAEAdam]:
    sae = build_sae(SAEConfig(architecture="topk", d_in=576, d_sae=2304, k=16))
    init_weights(sae, torch.Generator().manual_seed(0))
    if latent_major:
        store_latent_major(sae)
    optimizer = SAEAdam(sae.parameters(), lr=1e-3, fused=fused_adam_ok("cpu"))
    for step in range(steps):
        optimizer.zero_grad()
        topk_loss(sae, x[step * 256 : (step + 1) * 256], LossSettings(k=16)).loss.backward()
        optimizer.step()
    return {name: p.detach().clone() for name, p in sae.named_parameters()}, optimizer


def test_latent_major_steps_like_row_major(layer6_acts):
    plain, plain_opt = train(False, layer6_acts)
    aliased, aliased_opt = train(True, layer6_acts)
    assert not plain_opt.aliases and len(aliased_opt.aliases) == 1
    # The latent-major W_enc goes through another matmul, so activations differ in the last bits, and
    # Adam scales a near-zero gradient's rounding up to a step: a few W_dec entries moved by ~2e-6
    # after 3 steps on one machine (0.2% of a step of lr 1e-3). A wrong alias moves whole steps.
    for name in plain:
        torch.testing.assert_close(aliased[name], plain[name], rtol=1e-5, atol=1e-5, msg=name)


def test_alias_shares_memory_and_moments_are_views(layer6_acts):
    sae = build_sae(SAEConfig(architecture="topk", d_in=576, d_sae=2304, k=16))
    init_weights(sae, torch.Generator().manual_seed(0))
    store_latent_major(sae)
    optimizer = SAEAdam(sae.parameters(), lr=1e-3)
    alias = optimizer.aliases[sae.W_enc]
    assert alias.data_ptr() == sae.W_enc.data_ptr() and alias.is_contiguous()
    topk_loss(sae, layer6_acts[:256], LossSettings(k=16)).loss.backward()
    optimizer.step()
    exp_avg, exp_avg_sq = optimizer.moments(sae.W_enc)
    assert exp_avg.shape == sae.W_enc.shape and exp_avg.abs().max() > 0
    exp_avg[:, :10] = 0.0  # a view: the optimizer's own state changes
    assert optimizer.state[alias]["exp_avg"][:10].abs().max() == 0
    optimizer.zero_grad()
    assert sae.W_enc.grad is None and alias.grad is None
