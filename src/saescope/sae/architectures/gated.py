"""The Gated SAE (Rajamanoharan et al. 2024): a gate path picks features, a magnitude path sizes
them; trained with an L1 penalty on the gate path."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from saescope.errors import SaescopeError
from saescope.sae.architectures.plugin import Architecture, register
from saescope.sae.architectures.shared import as_sae
from saescope.sae.architectures.standard import L1Hyperparameters
from saescope.sae.base import SAE
from saescope.sae.config import SAEConfig
from saescope.sae.training.losses import (
    StepOutput,
    active_l0,
    fire_counts,
    l1_penalty,
    squared_error,
)

if TYPE_CHECKING:
    from saescope.sae.training.losses import LossSettings, StepOutput


class GatedSAE(SAE):
    """Gated SAE (Rajamanoharan et al. 2024): a gate path picks
    features, a magnitude path sizes them.

    gate = (sae_in @ W_enc + b_gate) > 0;  magnitude = relu(sae_in @ (W_enc * exp(r_mag)) + b_mag).
    There is no b_enc: the two paths have their own biases (b_enc is None, as in SAELens).
    """

    architecture = "gated"
    encoder_biases: ClassVar[tuple[str, ...]] = ("b_gate", "b_mag", "r_mag")

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__(cfg)
        self.register_parameter("b_enc", None)
        self.b_gate = nn.Parameter(torch.zeros(cfg.d_sae, dtype=self.dtype))
        self.b_mag = nn.Parameter(torch.zeros(cfg.d_sae, dtype=self.dtype))
        self.r_mag = nn.Parameter(torch.zeros(cfg.d_sae, dtype=self.dtype))

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = super().expected_shapes()
        del shapes["b_enc"]
        return {**shapes, "b_gate": (self.d_sae,), "b_mag": (self.d_sae,), "r_mag": (self.d_sae,)}

    def pre_acts(self, sae_in: torch.Tensor) -> torch.Tensor:
        # hidden_pre of a gated SAE is the magnitude path's (what SAELens reports as acts_pre)
        return sae_in @ (self.W_enc * self.r_mag.exp()) + self.b_mag

    def gate_pre(self, sae_in: torch.Tensor) -> torch.Tensor:
        return sae_in @ self.W_enc + self.b_gate

    def encode_with_stats(self, x: torch.Tensor):
        x = x.to(self.dtype)
        x_normed, stats = self.normalize_input(x)
        sae_in = self.sae_input(x_normed)
        active = self.gate_pre(sae_in) > 0
        return active * F.relu(self.pre_acts(sae_in)), stats

    def activation(self, hidden_pre: torch.Tensor) -> torch.Tensor:
        raise SaescopeError("a gated SAE's activation needs both paths: use encode()")

    def scale_feature_tensors(self, norms: torch.Tensor) -> None:
        self.b_gate.mul_(norms)
        self.b_mag.mul_(norms)


def gated_loss(sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
    """MSE + l1 * L1(relu(gate pre) * ||W_dec||) + MSE of the gate path through a frozen decoder."""

    sae_in = x - sae.b_dec
    gate_pre = as_sae(sae, GatedSAE).gate_pre(sae_in)
    acts = (gate_pre > 0) * F.relu(sae.pre_acts(sae_in))
    recon = acts @ sae.W_dec + sae.b_dec
    mse = squared_error(recon, x)
    gate_acts = F.relu(gate_pre)
    l1 = l1_penalty(gate_acts, sae, s)
    aux_recon = gate_acts @ sae.W_dec.detach() + sae.b_dec.detach()
    loss = mse + s.l1_coefficient * l1 + squared_error(aux_recon, x)
    return StepOutput(loss, mse.detach(), active_l0(acts), fire_counts(acts), l1.detach())


@register
class Gated(Architecture):
    sae_class = GatedSAE
    hyperparameters = L1Hyperparameters
    dense_start = True
    resamples_dead = True

    def init_tensors(self, sae: SAE) -> None:
        for name in GatedSAE.encoder_biases:  # the magnitude path starts equal to the gate path
            getattr(sae, name).zero_()

    def loss(self, sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
        return gated_loss(sae, x, s)
