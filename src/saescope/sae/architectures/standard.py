"""The standard SAE: ReLU activations, trained with an L1 penalty (Bricken et al. 2023)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from torch.nn import functional as F

from saescope.config import setting
from saescope.sae.architectures.plugin import Architecture, Hyperparameters, register
from saescope.sae.base import SAE
from saescope.sae.training.losses import StepOutput, squared_error
from saescope.sae.training.sparse_relu import decode, relu_encode

if TYPE_CHECKING:
    from saescope.sae.training.losses import LossSettings, StepOutput


class StandardSAE(SAE):
    """ReLU SAE, trained with an L1 penalty: acts = relu(hidden_pre)."""

    architecture = "standard"

    def activation(self, hidden_pre: torch.Tensor) -> torch.Tensor:
        return F.relu(hidden_pre)


@dataclass
class L1Hyperparameters(Hyperparameters):
    """L1-penalised SAEs (standard, gated): one SAE per l1_coefficient."""

    l1_coefficient: float | list[float] = setting(
        5.0,
        "the L1 penalty's coefficient; a list trains one SAE per value",
        low=0.0,
        high=1e4,
        note="typical: 1 to 10",
    )

    grid_fields: ClassVar[tuple[str, ...]] = ("l1_coefficient",)
    label_formats: ClassVar[dict[str, str]] = {"l1_coefficient": "l1_{:g}"}
    warmed_up: ClassVar[tuple[str, ...]] = ("l1_coefficient",)


def standard_loss(sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
    """ReLU SAE: MSE + l1 * sum_i acts_i (* ||W_dec[i]|| when the decoder norm is free). The active
    latents go through the sparse path once they are few (sae/training/sparse_relu.py)."""

    active = relu_encode(x, sae.W_enc, sae.b_enc, sae.b_dec)
    recon = decode(active, sae.W_dec) + sae.b_dec
    mse = squared_error(recon, x)
    l1 = active.weighted_sum(None if s.decoder_unit_norm else sae.W_dec.norm(dim=-1)) / x.shape[0]
    l0 = torch.tensor(active.count() / x.shape[0])
    return StepOutput(
        mse + s.l1_coefficient * l1, mse.detach(), l0, active.fire_counts(), l1.detach()
    )


@register
class Standard(Architecture):
    sae_class = StandardSAE
    hyperparameters = L1Hyperparameters
    dense_start = True
    sparse_backward = True
    resamples_dead = True

    def loss(self, sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
        return standard_loss(sae, x, s)
