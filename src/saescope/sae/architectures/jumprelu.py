"""The JumpReLU SAE (Rajamanoharan et al. 2024, "Jumping Ahead"): a learnt threshold per feature,
trained with an L0 penalty through straight-through estimators (shared.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from saescope.config import setting
from saescope.errors import SaescopeError
from saescope.sae.architectures.plugin import Architecture, Hyperparameters, register
from saescope.sae.architectures.shared import as_sae, jumprelu, step
from saescope.sae.base import SAE
from saescope.sae.config import SAEConfig
from saescope.sae.training.losses import (
    StepOutput,
    active_l0,
    encoder_pre,
    fire_counts,
    squared_error,
)

if TYPE_CHECKING:
    from saescope.sae.training.losses import LossSettings, StepOutput


class JumpReLUSAE(SAE):
    """JumpReLU SAE: acts = relu(hidden_pre) where hidden_pre > threshold[i], else 0."""

    architecture = "jumprelu"

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__(cfg)
        self.threshold = nn.Parameter(torch.zeros(cfg.d_sae, dtype=self.dtype))

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        return {**super().expected_shapes(), "threshold": (self.d_sae,)}

    def activation(self, hidden_pre: torch.Tensor) -> torch.Tensor:
        return F.relu(hidden_pre) * (hidden_pre > self.threshold)

    def training_activation(
        self, hidden_pre: torch.Tensor, bandwidth: float = 0.001
    ) -> torch.Tensor:
        """The same function with the straight-through threshold gradient, for training."""
        return jumprelu(F.relu(hidden_pre), self.threshold, bandwidth)

    def scale_feature_tensors(self, norms: torch.Tensor) -> None:
        self.threshold.mul_(norms)


@dataclass
class JumpReLUHyperparameters(Hyperparameters):
    """The L0 penalty's coefficient and the straight-through estimators' kernel width."""

    l0_coefficient: float = setting(1.0, "the L0 penalty's coefficient", low=0.0, high=1e4)
    bandwidth: float = setting(
        0.001,
        "width of the threshold's pseudo-derivative (the straight-through kernel)",
        low=1e-6,
        high=1.0,
        accepted="a number from 1e-6 to 1",
    )

    warmed_up: ClassVar[tuple[str, ...]] = ("l0_coefficient",)
    legacy_names: ClassVar[dict[str, str]] = {
        "jumprelu_l0_coefficient": "l0_coefficient",
        "jumprelu_bandwidth": "bandwidth",
    }


def settings_of(s: LossSettings) -> JumpReLUHyperparameters:
    """The JumpReLU section the trainer passed in the loss settings (warm-up applied)."""
    if not isinstance(s.hyper, JumpReLUHyperparameters):
        raise SaescopeError("the jumprelu loss needs its hyperparameters in the loss settings")
    return s.hyper


def jumprelu_loss(sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
    """MSE + coefficient * L0, with straight-through gradients for the thresholds."""

    hyper, jumping = settings_of(s), as_sae(sae, JumpReLUSAE)
    pre = encoder_pre(sae, x)
    acts = jumping.training_activation(pre, hyper.bandwidth)
    recon = acts @ sae.W_dec + sae.b_dec
    mse = squared_error(recon, x)
    l0_penalty = step(F.relu(pre), jumping.threshold, hyper.bandwidth).sum(dim=-1).mean()
    loss = mse + hyper.l0_coefficient * l0_penalty
    return StepOutput(loss, mse.detach(), active_l0(acts), fire_counts(acts), l0_penalty.detach())


@register
class JumpReLU(Architecture):
    sae_class = JumpReLUSAE
    hyperparameters = JumpReLUHyperparameters
    dense_start = True

    def init_tensors(self, sae: SAE) -> None:
        as_sae(sae, JumpReLUSAE).threshold.fill_(0.001)  # small and positive

    def loss(self, sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
        return jumprelu_loss(sae, x, s)
