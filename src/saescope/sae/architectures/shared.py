"""Pieces several architectures share: JumpReLU straight-through estimators, top-k selection,
and the checks their training hyperparameters use (the config schema's, so messages name field,
value and what is accepted as for every declared config).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch.nn import functional as F

from saescope.config.schema import FieldSpec, check_field
from saescope.errors import ConfigError

if TYPE_CHECKING:
    from saescope.sae.config import SAEConfig

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
    """(x > threshold) as a float, with a rectangle-kernel pseudo-derivative for the threshold (the L0 loss)."""

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
    """Differentiable JumpReLU for training: x * (x > threshold), threshold gets a pseudo-gradient."""
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


def check_value(name: str, value: Any, tp: Any, **declaration: Any) -> None:
    """The config schema's check of one field (type, low/high, choices, accepted text), for a
    value held outside a Config, such as an architecture's Hyperparameters."""
    meta = {"low": None, "high": None, "choices": None, **declaration}
    check_field(FieldSpec(name, tp, None, meta), value)


def check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    """Raise ConfigError unless value is an integer in [low, high] (the schema's check)."""
    check_value(name, value, int, low=low, high=high)


def check_float(name: str, value: Any, low: float, high: float, accepted: str) -> None:
    """Raise ConfigError unless value is a number in [low, high] (the schema's check)."""
    check_value(name, value, float, low=low, high=high, accepted=accepted)


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
                "k", k, f"an integer from 1 to d_sae ({d_sae} = {d_in} x {expansion_factor})"
            )
