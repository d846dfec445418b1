"""The BatchTopK SAE (Bussmann et al. 2024): training keeps the k * n_tokens largest activations
of the whole batch; inference uses one global threshold learnt in training."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F

from saescope.errors import SaescopeError
from saescope.sae.architectures.plugin import register
from saescope.sae.architectures.shared import as_sae, batch_topk, loss_k
from saescope.sae.architectures.topk import KArchitecture, config_k
from saescope.sae.base import SAE
from saescope.sae.config import SAEConfig
from saescope.sae.training.losses import (
    StepOutput,
    active_l0,
    auxk_loss,
    encoder_pre,
    fire_counts,
    squared_error,
)

if TYPE_CHECKING:
    from saescope.sae.architectures.jumprelu import JumpReLUSAE
    from saescope.sae.training.losses import LossSettings, StepOutput


class BatchTopKSAE(SAE):
    """BatchTopK SAE (Bussmann et al. 2024).

    Training keeps the k * n_tokens largest activations of the whole batch (`training_encode`);
    inference uses one global threshold learnt in training: acts = relu(pre) where pre > threshold.
    """

    architecture = "batchtopk"
    threshold: torch.Tensor  # a buffer (register_buffer)

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__(cfg)
        # a scalar; -1 until training sets it, as dictionary_learning does
        self.register_buffer("threshold", torch.tensor(-1.0, dtype=self.dtype))

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        return {**super().expected_shapes(), "threshold": ()}

    def activation(self, hidden_pre: torch.Tensor) -> torch.Tensor:
        return F.relu(hidden_pre) * (hidden_pre > self.threshold)

    def training_encode(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., d_in] -> acts [..., d_sae] chosen by batch-level top-k (training only)."""
        acts, self._last_stats = self.encode_pre_with_stats(x)
        return batch_topk(acts, config_k(self.cfg))

    def encode_pre_with_stats(self, x: torch.Tensor):
        x = x.to(self.dtype)
        x_normed, stats = self.normalize_input(x)
        return self.pre_acts(self.sae_input(x_normed)), stats

    @torch.no_grad()
    def update_threshold(self, acts: torch.Tensor, momentum: float = 0.99) -> None:
        """Move the inference threshold toward the smallest active value of a training batch.

        acts: [..., d_sae] from training_encode. An exponential moving average, as in
        dictionary_learning's BatchTopK trainer.
        """
        active = acts[acts > 0]
        if active.numel() == 0:
            return
        batch_min = active.min().to(self.threshold.dtype)
        if self.threshold < 0:
            self.threshold.copy_(batch_min)
        else:
            self.threshold.mul_(momentum).add_((1 - momentum) * batch_min)

    def check_foldable(self, norms: torch.Tensor) -> None:
        # one global threshold cannot follow features scaled by different norms
        if not torch.allclose(norms, torch.ones_like(norms), atol=1e-4):
            raise SaescopeError(
                f"fold_W_dec_norm would change a {self.architecture} SAE's outputs (one global "
                "threshold, decoder rows not unit-norm); convert it with to_jumprelu() first"
            )

    def to_jumprelu(self) -> JumpReLUSAE:
        """The same function as a JumpReLU SAE with the global threshold on every feature."""
        from saescope.sae.registry import build_sae  # avoid a cycle

        cfg = self.cfg.replace(architecture="jumprelu", k=None, matryoshka_widths=None)
        sae = build_sae(cfg)
        state = {name: t for name, t in self.state_dict().items() if name != "threshold"}
        state["threshold"] = self.threshold.expand(self.d_sae).clone()
        sae.load_state_dict(state)
        return sae  # type: ignore[return-value]


def batchtopk_acts(sae: SAE, x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(pre-activations, batch-top-k acts), both [n, d_sae]; also moves the inference threshold."""

    pre = encoder_pre(sae, x)
    acts = batch_topk(pre, k)
    as_sae(sae, BatchTopKSAE).update_threshold(acts.detach())
    return pre, acts


def batchtopk_loss(sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
    """MSE of the batch-top-k reconstruction + aux_k_coefficient * AuxK."""

    _, acts = batchtopk_acts(sae, x, loss_k(s))
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


@register
class BatchTopK(KArchitecture):
    sae_class = BatchTopKSAE

    def loss(self, sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
        return batchtopk_loss(sae, x, s)
