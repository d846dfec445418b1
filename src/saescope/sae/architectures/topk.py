"""The TopK SAE (Gao et al. 2024): the k largest pre-activations per token, ReLU'd; the rest zero.

Training uses the sparse fast path (sae/training/sparse_topk.py) and the AuxK loss for dead latents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from saescope.config import setting
from saescope.errors import SaescopeError
from saescope.sae.architectures.plugin import Architecture, Hyperparameters, register
from saescope.sae.architectures.shared import (
    check_k_fits,
    check_sae_k,
    scatter_dense,
    topk_sparse,
)
from saescope.sae.base import SAE
from saescope.sae.training.losses import StepOutput, auxk_loss, sparse_fire_counts, squared_error
from saescope.sae.training.sparse_topk import sparse_decode, topk_encode

if TYPE_CHECKING:
    from saescope.sae.config import SAEConfig
    from saescope.sae.training.losses import LossSettings, StepOutput


def config_k(cfg: SAEConfig) -> int:
    """A TopK-style SAE's k (check_sae_k makes sure its config has one)."""
    if cfg.k is None:
        raise SaescopeError(f"a {cfg.architecture} SAE's config needs k")
    return cfg.k


class TopKSAE(SAE):
    """TopK SAE (Gao et al. 2024): the k largest pre-activations per token, ReLU'd; the rest zero.

    With cfg.rescale_acts_by_decoder_norm (a SAELens option) pre-activations are multiplied by
    ||W_dec[i]|| before choosing, and decode divides them back.
    """

    architecture = "topk"

    def scaled_pre(self, hidden_pre: torch.Tensor) -> torch.Tensor:
        if self.cfg.rescale_acts_by_decoder_norm:
            return hidden_pre * self.W_dec_norms()
        return hidden_pre

    def activation(self, hidden_pre: torch.Tensor) -> torch.Tensor:
        values, indices = topk_sparse(self.scaled_pre(hidden_pre), config_k(self.cfg))
        return scatter_dense(values, indices, self.d_sae)

    def encode_sparse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [..., d_in] -> (values [..., k], indices [..., k]); pair with decode_sparse."""
        x = x.to(self.dtype)
        x_normed, self._last_stats = self.normalize_input(x)
        hidden_pre = self.pre_acts(self.sae_input(x_normed))
        return topk_sparse(self.scaled_pre(hidden_pre), config_k(self.cfg))

    def sparse_codes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # the k per token directly: no dense [n, d_sae] tensor to fill and search
        with torch.no_grad():
            values, features = self.encode_sparse(x)
        rows = torch.arange(len(x))[:, None].expand_as(features)
        keep = values > 0
        return rows[keep], features[keep], values[keep].float()

    def decoder_input(self, acts: torch.Tensor) -> torch.Tensor:
        if self.cfg.rescale_acts_by_decoder_norm:
            return acts / self.W_dec_norms()
        return acts

    def decoder_input_sparse(self, values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        if self.cfg.rescale_acts_by_decoder_norm:
            return values / self.W_dec_norms()[indices]
        return values

    def check_foldable(self, norms: torch.Tensor) -> None:
        # Scaling features by different norms changes which k are largest, unless the
        # selection already looked at acts * norm (rescale_acts_by_decoder_norm). One common
        # norm for every row (our trained SAEs, which fold the input scaling into W_dec) is safe.
        uniform = torch.allclose(norms, norms.mean().expand_as(norms), rtol=1e-4)
        if not self.cfg.rescale_acts_by_decoder_norm and not uniform:
            raise SaescopeError(
                "fold_W_dec_norm would change which features a TopK SAE picks (its decoder rows "
                "are not unit-norm); it is safe only with rescale_acts_by_decoder_norm"
            )

    def scale_feature_tensors(self, norms: torch.Tensor) -> None:
        # after folding, hidden_pre already includes the norm
        self.cfg = self.cfg.replace(rescale_acts_by_decoder_norm=False)


@dataclass
class KHyperparameters(Hyperparameters):
    """TopK-style SAEs (topk, batchtopk): one SAE per k (active
    latents per token, or on average)."""

    # the upper bound, d_sae, needs d_in (known once the model is loaded): see check_fits
    k: int | list[int] = setting(
        32,
        "active features per token (on average, BatchTopK); a list trains one SAE per value",
        low=1,
    )

    grid_fields: ClassVar[tuple[str, ...]] = ("k",)
    label_formats: ClassVar[dict[str, str]] = {"k": "k{}"}


def k_of(hyper: Hyperparameters) -> int | list[int]:
    """The k of a TopK-style architecture's hyperparameters (one k once a grid is expanded)."""
    if not isinstance(hyper, KHyperparameters):
        raise SaescopeError(f"expected k hyperparameters, got {type(hyper).__name__}")
    return hyper.k


class KArchitecture(Architecture):
    """What the TopK-style architectures share: k in the SAE config, checked against d_sae."""

    hyperparameters = KHyperparameters

    def check_sae_config(self, cfg: SAEConfig) -> None:
        check_sae_k(cfg)

    def check_fits(self, hyper: Hyperparameters, d_in: int, expansion_factor: int) -> None:
        check_k_fits(k_of(hyper), d_in, expansion_factor)

    def sae_config_fields(self, hyper: Hyperparameters, d_sae: int) -> dict[str, Any]:
        return {"k": k_of(hyper)}


def topk_loss(sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
    """MSE of the k-sparse reconstruction + aux_k_coefficient * AuxK, all on the sparse path."""

    if s.k is None:
        raise SaescopeError("the topk loss needs k in its loss settings")
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


@register
class TopK(KArchitecture):
    sae_class = TopKSAE
    sparse_backward = True
    feature_shardable = True

    def loss(self, sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
        return topk_loss(sae, x, s)
