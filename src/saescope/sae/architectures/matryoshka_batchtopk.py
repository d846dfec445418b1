"""The Matryoshka BatchTopK SAE (Bussmann et al. 2025): BatchTopK whose nested prefixes of the
dictionary must each reconstruct the input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from saescope.config import setting
from saescope.errors import ConfigError, SaescopeError
from saescope.sae.architectures.batchtopk import BatchTopKSAE, batchtopk_acts
from saescope.sae.architectures.plugin import Hyperparameters, register
from saescope.sae.architectures.shared import check_sae_k, loss_k, widths_of
from saescope.sae.architectures.topk import KArchitecture, KHyperparameters
from saescope.sae.base import SAE
from saescope.sae.config import SAEConfig
from saescope.sae.training.losses import (
    StepOutput,
    active_l0,
    auxk_loss,
    fire_counts,
    squared_error,
)

if TYPE_CHECKING:
    from saescope.sae.training.losses import LossSettings, StepOutput


class MatryoshkaBatchTopKSAE(BatchTopKSAE):
    """Matryoshka BatchTopK SAE (Bussmann et al. 2025): nested prefixes of
    the dictionary each reconstruct.

    Inference is BatchTopK's (global threshold); cfg.matryoshka_widths gives the nested widths, so
    prefix_reconstructions() can give the per-prefix outputs the training loss sums over.
    """

    architecture = "matryoshka_batchtopk"

    def prefix_reconstructions(self, acts: torch.Tensor) -> list[torch.Tensor]:
        """acts [..., d_sae] -> reconstruction [..., d_out] using
        features [0, end) for each prefix end."""
        outputs = []
        out = self.b_dec.expand(*acts.shape[:-1], self.d_out)
        start = 0
        for end in widths_of(self.cfg):
            out = out + acts[..., start:end] @ self.W_dec[start:end]
            outputs.append(self.denormalize_output(out, self._last_stats))
            start = end
        return outputs


FRACTIONS = "a list of positive fractions summing to 1"


@dataclass
class MatryoshkaHyperparameters(KHyperparameters):
    """BatchTopK's k, and the nested groups' shares of the dictionary (summing to 1)."""

    group_fractions: list[float] = setting(
        [0.0625, 0.1875, 0.75],
        "the nested groups' shares of d_sae, smallest prefix first",
        low=0.0,
        high=1.0,
        accepted=FRACTIONS,
    )

    legacy_names: ClassVar[dict[str, str]] = {"matryoshka_fractions": "group_fractions"}

    def validate(self) -> None:
        super().validate()
        fractions = self.group_fractions
        if not fractions or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) <= 0:
            raise ConfigError("group_fractions", fractions, FRACTIONS)


def nested_widths(d_sae: int, fractions: list[float]) -> list[int]:
    """Matryoshka prefix ends from group fractions: [0.25, 0.75] of 1024 -> [256, 1024]."""
    ends, total = [], 0.0
    for fraction in fractions[:-1]:
        total += fraction
        ends.append(max(1, round(d_sae * total)))
    return [*ends, d_sae]


def matryoshka_loss(sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
    """BatchTopK acts; every nested prefix of the dictionary must
    reconstruct x (mean of their MSEs)."""

    _, acts = batchtopk_acts(sae, x, loss_k(s))
    recon = sae.b_dec.expand_as(x)
    prefix_mses = []
    start = 0
    for end in widths_of(sae.cfg):
        recon = recon + acts[:, start:end] @ sae.W_dec[start:end]
        prefix_mses.append(squared_error(recon, x))
        start = end
    mse = prefix_mses[-1]
    aux = auxk_loss(sae, x, (x - recon).detach(), s)
    loss = torch.stack(prefix_mses).mean() + s.aux_k_coefficient * aux
    return StepOutput(loss, mse.detach(), active_l0(acts), fire_counts(acts), aux.detach())


@register
class MatryoshkaBatchTopK(KArchitecture):
    sae_class = MatryoshkaBatchTopKSAE
    hyperparameters = MatryoshkaHyperparameters

    def check_sae_config(self, cfg: SAEConfig) -> None:
        check_sae_k(cfg)
        widths = cfg.matryoshka_widths
        increasing = bool(widths) and all(a < b for a, b in zip([0, *widths], widths, strict=False))
        if not widths or not increasing or widths[-1] != cfg.d_sae:
            raise ConfigError(
                "matryoshka_widths",
                widths,
                f"increasing nested widths ending at d_sae ({cfg.d_sae})",
            )

    def sae_config_fields(self, hyper: Hyperparameters, d_sae: int) -> dict[str, Any]:
        if not isinstance(hyper, MatryoshkaHyperparameters):
            raise SaescopeError(f"expected Matryoshka settings, got {type(hyper).__name__}")
        widths = nested_widths(d_sae, hyper.group_fractions)
        return {"k": hyper.k, "matryoshka_widths": widths}

    def loss(self, sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
        return matryoshka_loss(sae, x, s)
