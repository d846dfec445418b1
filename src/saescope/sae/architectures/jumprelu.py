"""The JumpReLU SAE (Rajamanoharan et al. 2024, "Jumping Ahead"): a learnt threshold per feature,
trained with an L0 penalty through straight-through estimators (shared.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from saescope.sae.architectures.plugin import Architecture, Hyperparameters, register
from saescope.sae.architectures.shared import check_float, jumprelu, step
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

    jumprelu_l0_coefficient: float
    jumprelu_bandwidth: float

    warmed_up: ClassVar[tuple[str, ...]] = ("jumprelu_l0_coefficient",)

    def validate(self) -> None:
        check_float(
            "jumprelu_l0_coefficient",
            self.jumprelu_l0_coefficient,
            0.0,
            1e4,
            "a number from 0 to 10000",
        )
        check_float(
            "jumprelu_bandwidth", self.jumprelu_bandwidth, 1e-6, 1.0, "a number from 1e-6 to 1"
        )


def jumprelu_loss(sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
    """MSE + coefficient * L0, with straight-through gradients for the thresholds."""

    pre = encoder_pre(sae, x)
    acts = sae.training_activation(pre, s.jumprelu_bandwidth)  # type: ignore[attr-defined]
    recon = acts @ sae.W_dec + sae.b_dec
    mse = squared_error(recon, x)
    l0_penalty = step(F.relu(pre), sae.threshold, s.jumprelu_bandwidth).sum(dim=-1).mean()  # type: ignore[arg-type]
    loss = mse + s.jumprelu_l0_coefficient * l0_penalty
    return StepOutput(loss, mse.detach(), active_l0(acts), fire_counts(acts), l0_penalty.detach())


@register
class JumpReLU(Architecture):
    sae_class = JumpReLUSAE
    hyperparameters = JumpReLUHyperparameters
    dense_start = True

    def init_tensors(self, sae: SAE) -> None:
        sae.threshold.fill_(0.001)  # type: ignore[operator]  # small and positive

    def loss(self, sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
        return jumprelu_loss(sae, x, s)
