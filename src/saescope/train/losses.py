"""Training losses, one per architecture, on normalised activations x [batch, d_in].

Each returns a StepOutput: the loss to minimise, the reconstruction error terms, L0 and
which latents fired. TopK uses the sparse fast path (sparse_topk.py); the others use dense
autograd, which is what their math needs (every latent can be active at initialisation).
The inference classes in saescope.sae compute the same encodings; these functions add
what only training needs (penalties, AuxK, straight-through estimators, batch-level top-k).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from saescope.sae import SAE
from saescope.sae.architectures import batch_topk, step
from saescope.train.sparse_relu import decode, relu_encode
from saescope.train.sparse_topk import sparse_decode, topk_encode


@dataclass
class LossSettings:
    """What a loss needs besides the SAE and the batch; the trainer fills it each step."""

    k: int | None = None
    l1_coefficient: float = 0.0  # already multiplied by the warm-up factor
    decoder_unit_norm: bool = True
    aux_k: int = 256
    aux_k_coefficient: float = 1 / 32
    dead: torch.Tensor | None = None  # bool [d_sae]: latents that have not fired for a while
    jumprelu_l0_coefficient: float = 1.0  # already multiplied by the warm-up factor
    jumprelu_bandwidth: float = 0.001


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


def topk_loss(sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
    values, indices = topk_encode(x, sae.W_enc, sae.b_enc, sae.b_dec, s.k)  # [n, k] each
    recon = sparse_decode(values, indices, sae.W_dec) + sae.b_dec
    mse = squared_error(recon, x)
    aux = auxk_loss(sae, x, (x - recon).detach(), s)
    loss = mse + s.aux_k_coefficient * aux
    l0 = (values > 0).sum(dim=-1).float().mean()
    return StepOutput(
        loss,
        mse.detach(),
        l0.detach(),
        sparse_fire_counts(indices, values, sae.d_sae),
        aux.detach(),
    )


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


def standard_loss(sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
    """ReLU SAE: MSE + l1 * sum_i acts_i (* ||W_dec[i]|| when the decoder norm is free).
    The active latents go through the sparse path once they are few (sparse_relu.py)."""
    active = relu_encode(x, sae.W_enc, sae.b_enc, sae.b_dec)
    recon = decode(active, sae.W_dec) + sae.b_dec
    mse = squared_error(recon, x)
    l1 = active.weighted_sum(None if s.decoder_unit_norm else sae.W_dec.norm(dim=-1)) / x.shape[0]
    l0 = torch.tensor(active.count() / x.shape[0])
    return StepOutput(
        mse + s.l1_coefficient * l1, mse.detach(), l0, active.fire_counts(), l1.detach()
    )


def l1_penalty(acts: torch.Tensor, sae: SAE, s: LossSettings) -> torch.Tensor:
    """Mean over tokens of the summed activations (acts >= 0), weighted by decoder norms if free."""
    if s.decoder_unit_norm:
        return acts.sum() / acts.shape[0]
    return (acts @ sae.W_dec.norm(dim=-1)).mean()


def active_l0(acts: torch.Tensor) -> torch.Tensor:
    """Mean active latents per token: one count over the whole batch (no per-token int64 sums)."""
    return (torch.count_nonzero(acts.detach()) / acts.shape[0]).float()


def batchtopk_acts(sae: SAE, x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(pre-activations, batch-top-k acts), both [n, d_sae]; also moves the inference threshold."""
    pre = encoder_pre(sae, x)
    acts = batch_topk(pre, k)
    sae.update_threshold(acts.detach())  # type: ignore[attr-defined]
    return pre, acts


def batchtopk_loss(sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
    _, acts = batchtopk_acts(sae, x, s.k)
    recon = acts @ sae.W_dec + sae.b_dec
    mse = squared_error(recon, x)
    aux = auxk_loss(sae, x, (x - recon).detach(), s)
    return StepOutput(
        mse + s.aux_k_coefficient * aux,
        mse.detach(),
        active_l0(acts),
        fire_counts(acts),
        aux.detach(),
    )


def matryoshka_loss(sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
    """BatchTopK acts; every nested prefix of the dictionary must reconstruct x (mean of their MSEs)."""
    _, acts = batchtopk_acts(sae, x, s.k)
    recon = sae.b_dec.expand_as(x)
    prefix_mses = []
    start = 0
    for end in sae.cfg.matryoshka_widths:  # type: ignore[union-attr]
        recon = recon + acts[:, start:end] @ sae.W_dec[start:end]
        prefix_mses.append(squared_error(recon, x))
        start = end
    mse = prefix_mses[-1]
    aux = auxk_loss(sae, x, (x - recon).detach(), s)
    loss = torch.stack(prefix_mses).mean() + s.aux_k_coefficient * aux
    return StepOutput(loss, mse.detach(), active_l0(acts), fire_counts(acts), aux.detach())


def jumprelu_loss(sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
    """JumpReLU (Rajamanoharan et al. 2024): MSE + coefficient * L0 with straight-through thresholds."""
    pre = encoder_pre(sae, x)
    acts = sae.training_activation(pre, s.jumprelu_bandwidth)  # type: ignore[attr-defined]
    recon = acts @ sae.W_dec + sae.b_dec
    mse = squared_error(recon, x)
    l0_penalty = step(F.relu(pre), sae.threshold, s.jumprelu_bandwidth).sum(dim=-1).mean()  # type: ignore[attr-defined]
    loss = mse + s.jumprelu_l0_coefficient * l0_penalty
    return StepOutput(loss, mse.detach(), active_l0(acts), fire_counts(acts), l0_penalty.detach())


def gated_loss(sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
    """Gated SAE: MSE + l1 * L1(relu(gate pre) * ||W_dec||) + MSE of the gate path through a frozen decoder."""
    sae_in = x - sae.b_dec
    gate_pre = sae.gate_pre(sae_in)  # type: ignore[attr-defined]
    acts = (gate_pre > 0) * F.relu(sae.pre_acts(sae_in))
    recon = acts @ sae.W_dec + sae.b_dec
    mse = squared_error(recon, x)
    gate_acts = F.relu(gate_pre)
    l1 = l1_penalty(gate_acts, sae, s)
    aux_recon = gate_acts @ sae.W_dec.detach() + sae.b_dec.detach()
    loss = mse + s.l1_coefficient * l1 + squared_error(aux_recon, x)
    return StepOutput(loss, mse.detach(), active_l0(acts), fire_counts(acts), l1.detach())


LOSSES = {
    "topk": topk_loss,
    "standard": standard_loss,
    "batchtopk": batchtopk_loss,
    "matryoshka_batchtopk": matryoshka_loss,
    "jumprelu": jumprelu_loss,
    "gated": gated_loss,
}
