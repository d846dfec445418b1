"""What every architecture's training loss shares: its settings, its output, and the pieces
(squared error, fire counts, AuxK, L1, the encoder's pre-activations) the losses are built from.

The losses themselves live with their architectures (saescope.sae.architectures.<name>), each
on normalised activations x [batch, d_in], each returning a StepOutput: the loss to minimise,
the reconstruction error, L0 and which latents fired.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from saescope.sae.base import SAE
from saescope.sae.training.sparse_topk import sparse_decode


@dataclass
class LossSettings:
    """What a loss needs besides the SAE and the batch; the trainer fills it each step."""

    k: int | None = None
    l1_coefficient: float = 0.0  # already multiplied by the warm-up factor
    decoder_unit_norm: bool = True
    aux_k: int = 256
    aux_k_coefficient: float = 1 / 32
    dead: torch.Tensor | None = None  # bool [d_sae]: latents that have not fired for a while
    # the SAE's own hyperparameters (its architecture's Hyperparameters, warm-up applied): what a
    # plug-in architecture reads when it has knobs beyond the fields above
    hyper: Any = None


@dataclass
class StepOutput:
    loss: torch.Tensor  # scalar, with grad
    mse: torch.Tensor  # scalar: mean over tokens of ||recon - x||^2 (detached)
    l0: torch.Tensor  # scalar: mean active latents per token (detached)
    fire_counts: (
        torch.Tensor
    )  # int64 [d_sae]: how many tokens of the batch each latent was active on
    aux_loss: torch.Tensor  # scalar (detached): AuxK, L1 or L0 penalty term, 0 if none


def squared_error(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean over tokens of the summed squared error (SAELens's and sparsify's convention)."""
    return (recon - x).pow(2).sum(dim=-1).mean()


def sparse_fire_counts(indices: torch.Tensor, values: torch.Tensor, d_sae: int) -> torch.Tensor:
    """indices, values [n, k] -> int64 [d_sae]: tokens on which each latent is active."""
    return torch.bincount(indices[values > 0], minlength=d_sae)


def fire_counts(acts: torch.Tensor) -> torch.Tensor:
    """acts [n, d_sae], all >= 0 -> int64 [d_sae]: tokens on which each latent is active.

    sign() summed in float32 (exact up to 2^24 tokens a batch): summing the bool mask would
    first convert all n * d_sae entries to int64, 2-3x slower at d_sae 9216.
    """
    return acts.detach().sign().sum(dim=0).long()


def encoder_pre(sae: SAE, x: torch.Tensor, W_enc: torch.Tensor | None = None) -> torch.Tensor:
    """(x - b_dec) @ W_enc + b_enc, computed as x @ W_enc + (b_enc - b_dec @ W_enc): [n, d_sae].

    The same numbers, but b_dec's gradient through the encoder then comes from a vector-matrix
    product instead of autograd's [n, d_sae] x [d_sae, d_in] matmul for the gradient of
    x - b_dec (x itself needs none): one full-size matmul fewer per step.
    """
    W_enc = sae.W_enc if W_enc is None else W_enc
    return torch.addmm(sae.b_enc - sae.b_dec @ W_enc, x, W_enc)


def auxk_loss(sae: SAE, x: torch.Tensor, residual: torch.Tensor, s: LossSettings) -> torch.Tensor:
    """AuxK (Gao et al. 2024): the dead latents' top-k_aux should reconstruct what the SAE missed.

    Normalised by the residual's variance, so the term is ~1 at worst; 0 with no dead latent.
    Only the dead latents' encoder columns and decoder rows get gradient.
    """
    if s.dead is None or not bool(s.dead.any()):
        return x.new_zeros(())
    dead_ids = s.dead.nonzero().squeeze(1)  # [n_dead]
    k_aux = min(s.aux_k, dead_ids.numel())
    sae_in = (x - sae.b_dec).detach()
    pre = torch.addmm(sae.b_enc[dead_ids], sae_in, sae.W_enc[:, dead_ids])  # [n, n_dead]
    values, local = pre.topk(k_aux, dim=-1, sorted=False)
    aux_recon = sparse_decode(F.relu(values), dead_ids[local], sae.W_dec)  # [n, d_in]
    variance = (residual - residual.mean(dim=0)).pow(2).sum(dim=-1).mean()
    return squared_error(aux_recon, residual) / variance.clamp_min(1e-12)


def l1_penalty(acts: torch.Tensor, sae: SAE, s: LossSettings) -> torch.Tensor:
    """Mean over tokens of the summed activations (acts >= 0), weighted by decoder norms if free."""
    if s.decoder_unit_norm:
        return acts.sum() / acts.shape[0]
    return (acts @ sae.W_dec.norm(dim=-1)).mean()


def active_l0(acts: torch.Tensor) -> torch.Tensor:
    """Mean active latents per token: one count over the whole batch (no per-token int64 sums)."""
    return (torch.count_nonzero(acts.detach()) / acts.shape[0]).float()
