"""Initialising an SAE for training: decoder rows, W_enc = W_dec^T, b_dec at the data's centre."""

from __future__ import annotations

import torch

from saescope.sae import SAE
from saescope.sae.architectures import get_architecture


@torch.no_grad()
def init_weights(
    sae: SAE,
    generator: torch.Generator,
    encoder_as_decoder_t: bool = True,
    decoder_norm: float = 1.0,
) -> None:
    """Random decoder rows of norm decoder_norm; the encoder the transpose of their directions
    (Gao et al. 2024), biases zero.

    For ReLU-style SAEs (every latent with a positive pre-activation is active) the encoder
    starts at 0.1x, so the first reconstructions sum ~d_sae/2 small terms instead of large ones;
    TopK-style SAEs sum only k terms and keep 1x.

    The architecture says whether it starts dense and initialises its own tensors (JumpReLU
    thresholds start small and positive; a gated SAE's magnitude path equals its gate path).
    """
    architecture = get_architecture(sae.cfg.architecture)
    d_sae, d_in = sae.W_dec.shape
    W_dec = torch.randn(d_sae, d_in, generator=generator, dtype=torch.float32)
    W_dec /= W_dec.norm(dim=-1, keepdim=True)
    sae.W_dec.copy_(W_dec * decoder_norm)
    if encoder_as_decoder_t:
        sae.W_enc.copy_(W_dec.T * (0.1 if architecture.dense_start else 1.0))
    else:
        bound = 1 / d_in**0.5
        sae.W_enc.copy_(torch.rand(d_in, d_sae, generator=generator) * 2 * bound - bound)
    if sae.b_enc is not None:  # gated SAEs have b_gate / b_mag instead
        sae.b_enc.zero_()
    sae.b_dec.zero_()
    architecture.init_tensors(sae)


def geometric_median(
    points: torch.Tensor, iterations: int = 100, tol: float = 1e-6
) -> torch.Tensor:
    """points [n, d] -> [d]: the point minimising the summed distances (Weiszfeld's iterations).

    Less pulled by outlier tokens (e.g. huge-norm first tokens) than the mean.
    """
    points = points.double()
    median = points.mean(dim=0)
    for _ in range(iterations):
        weights = 1 / (points - median).norm(dim=-1).clamp_min(1e-8)  # [n]
        new = (weights[:, None] * points).sum(dim=0) / weights.sum()
        moved = (new - median).norm() / median.norm().clamp_min(1e-8)
        median = new
        if moved < tol:
            break
    return median.float()


def data_centre(sample: torch.Tensor, how: str) -> torch.Tensor:
    """sample [n, d] -> [d]: where b_dec starts ('mean', 'geometric_median' or 'zeros')."""
    if how == "geometric_median":
        return geometric_median(sample)
    if how == "mean":
        return sample.mean(dim=0)
    return torch.zeros(sample.shape[1])
