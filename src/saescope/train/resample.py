"""Resampling dead latents of L1 SAEs (Bricken et al. 2023, simplified).

A dead latent gets a new decoder row pointing at an input the SAE reconstructs badly
(picked with probability proportional to its squared error), an encoder column along the
same direction scaled to a fraction of the live columns' norm, a zero bias, and fresh Adam
moments, so it starts from a useful place instead of staying dead.
"""

from __future__ import annotations

import torch

from saescope.sae import SAE
from saescope.train.optimizer import SAEAdam


@torch.no_grad()
def resample_dead(
    sae: SAE,
    optimizer: SAEAdam,
    x: torch.Tensor,
    dead: torch.Tensor,
    generator: torch.Generator,
) -> int:
    """x: a batch [n, d_in]; dead: bool [d_sae]. Returns the number of latents resampled."""
    dead_ids = dead.nonzero().squeeze(1)
    if dead_ids.numel() == 0:
        return 0
    errors = (sae(x) - x).pow(2).sum(dim=-1)  # [n]
    picks = torch.multinomial(
        errors.cpu() + 1e-12, dead_ids.numel(), replacement=True, generator=generator
    )
    directions = x[picks.to(x.device)] - sae.b_dec  # [n_dead, d_in]
    directions = directions / directions.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    live = ~dead.to(x.device)
    enc_norm = sae.W_enc[:, live].norm(dim=0).mean() if bool(live.any()) else torch.tensor(1.0)
    sae.W_dec[dead_ids] = directions
    sae.W_enc[:, dead_ids] = directions.T * enc_norm * 0.2
    for bias in encoder_biases(sae):
        bias[dead_ids] = 0.0
    reset_adam_moments(optimizer, sae, dead_ids)
    return int(dead_ids.numel())


def encoder_biases(sae: SAE) -> list[torch.Tensor]:
    """The per-latent encoder tensors besides W_enc: b_enc, or a
    gated SAE's b_gate, b_mag, r_mag."""
    return [getattr(sae, name) for name in sae.encoder_biases]


def reset_adam_moments(optimizer: SAEAdam, sae: SAE, ids: torch.Tensor) -> None:
    """Zero the Adam moments of the given latents in W_enc
    (columns), W_dec (rows) and the biases."""
    where = [(sae.W_enc, (slice(None), ids)), (sae.W_dec, (ids,))]
    where += [(bias, (ids,)) for bias in encoder_biases(sae)]
    for param, index in where:
        for moment in optimizer.moments(param):
            moment[index] = 0.0
