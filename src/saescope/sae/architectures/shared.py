"""Pieces several architectures share: JumpReLU straight-through estimators, top-k selection, and
the checks of k that need d_sae (known only once the model or the SAE config is).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import torch
from torch.nn import functional as F

from saescope.errors import ConfigError, SaescopeError

if TYPE_CHECKING:
    from saescope.sae.base import SAE
    from saescope.sae.config import SAEConfig
    from saescope.sae.training.losses import LossSettings

S = TypeVar("S", bound="SAE")

# ---- JumpReLU straight-through pieces (Rajamanoharan et al. 2024, "Jumping Ahead") ------------


def rectangle(z: torch.Tensor) -> torch.Tensor:
    """The rectangle kernel: 1 on (-1/2, 1/2), 0 elsewhere."""
    return ((z > -0.5) & (z < 0.5)).to(z.dtype)


class JumpReLUFunction(torch.autograd.Function):
    """x * (x > threshold), with a rectangle-kernel pseudo-derivative for the threshold."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, threshold: torch.Tensor, bandwidth: float) -> torch.Tensor:
        ctx.save_for_backward(x, threshold)
        ctx.bandwidth = bandwidth
        return x * (x > threshold).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        x, threshold = ctx.saved_tensors
        bandwidth = ctx.bandwidth
        grad_x = (x > threshold).to(x.dtype) * grad_out
        grad_threshold = (
            -(threshold / bandwidth) * rectangle((x - threshold) / bandwidth) * grad_out
        )
        return grad_x, _sum_to_shape(grad_threshold, threshold.shape), None


class StepFunction(torch.autograd.Function):
    """(x > threshold) as a float, with a rectangle-kernel pseudo-derivative
    for the threshold (the L0 loss)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, threshold: torch.Tensor, bandwidth: float) -> torch.Tensor:
        ctx.save_for_backward(x, threshold)
        ctx.bandwidth = bandwidth
        return (x > threshold).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        x, threshold = ctx.saved_tensors
        bandwidth = ctx.bandwidth
        grad_threshold = -(1.0 / bandwidth) * rectangle((x - threshold) / bandwidth) * grad_out
        return torch.zeros_like(x), _sum_to_shape(grad_threshold, threshold.shape), None


def _sum_to_shape(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum a broadcast gradient [..., d_sae] back to the parameter's shape."""
    while grad.dim() > len(shape):
        grad = grad.sum(dim=0)
    for dim, size in enumerate(shape):
        if size == 1 and grad.shape[dim] != 1:
            grad = grad.sum(dim=dim, keepdim=True)
    return grad


def jumprelu(x: torch.Tensor, threshold: torch.Tensor, bandwidth: float = 0.001) -> torch.Tensor:
    """Differentiable JumpReLU for training: x * (x > threshold), threshold gets a
    pseudo-gradient."""
    return JumpReLUFunction.apply(x, threshold, bandwidth)


def step(x: torch.Tensor, threshold: torch.Tensor, bandwidth: float = 0.001) -> torch.Tensor:
    """Differentiable Heaviside step (x > threshold) for the L0 penalty."""
    return StepFunction.apply(x, threshold, bandwidth)


# ---- top-k selection --------------------------------------------------------------------------


def topk_sparse(hidden_pre: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """hidden_pre [..., d_sae] -> (values [..., k] after ReLU, indices [..., k])."""
    values, indices = hidden_pre.topk(k, dim=-1, sorted=False)
    return F.relu(values), indices


def scatter_dense(values: torch.Tensor, indices: torch.Tensor, d_sae: int) -> torch.Tensor:
    """values, indices [..., k] -> dense [..., d_sae] with zeros elsewhere."""
    dense = values.new_zeros(*values.shape[:-1], d_sae)
    return dense.scatter(-1, indices, values)


def batch_topk(hidden_pre: torch.Tensor, k: int) -> torch.Tensor:
    """Training-time BatchTopK: keep the k * n_tokens largest ReLU'd activations of the whole batch.

    hidden_pre [..., d_sae] -> acts [..., d_sae]; tokens share a budget of k on average.
    """
    acts = F.relu(hidden_pre)
    flat = acts.reshape(-1)  # [n_tokens * d_sae]
    n_tokens = flat.numel() // acts.shape[-1]
    n_keep = min(k * n_tokens, flat.numel())
    values, indices = flat.topk(n_keep, sorted=False)
    return torch.zeros_like(flat).scatter(0, indices, values).reshape(acts.shape)


# ---- hyperparameter checks ----------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    """A grid field's values: a list as it is, one value as a list of one."""
    return list(value) if isinstance(value, list | tuple) else [value]


def as_sae(sae: SAE, cls: type[S]) -> S:
    """sae as its architecture's own class, whose tensors (threshold, gate) a loss reads."""
    if not isinstance(sae, cls):
        raise SaescopeError(f"expected a {cls.architecture} SAE, got {type(sae).__name__}")
    return sae


def loss_k(s: LossSettings) -> int:
    """k of a TopK-style loss (the trainer sets it from the SAE's hyperparameters)."""
    if s.k is None:
        raise SaescopeError("a TopK-style loss needs k in its loss settings")
    return s.k


def widths_of(cfg: SAEConfig) -> list[int]:
    """A Matryoshka SAE's nested widths (check_sae_config makes sure its config has them)."""
    if not cfg.matryoshka_widths:
        raise SaescopeError(f"a {cfg.architecture} SAE's config needs matryoshka_widths")
    return cfg.matryoshka_widths


def check_sae_k(cfg: SAEConfig) -> None:
    """TopK-style SAEs: k active features per token (or on average), from 1 to d_sae."""
    if not isinstance(cfg.k, int) or not 0 < cfg.k <= cfg.d_sae:
        raise ConfigError(
            "k", cfg.k, f"an integer from 1 to d_sae ({cfg.d_sae}) for a {cfg.architecture} SAE"
        )


def check_k_fits(ks: Any, d_in: int, expansion_factor: int) -> None:
    """Training: every k of the grid at most d_sae of the smallest SAE (known once d_in is)."""
    d_sae = d_in * expansion_factor
    for k in as_list(ks):
        if k > d_sae:
            raise ConfigError(
                "architecture.k",
                k,
                f"an integer from 1 to d_sae ({d_sae} = {d_in} x {expansion_factor})",
            )
