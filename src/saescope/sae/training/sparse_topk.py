"""The fast TopK training path: a dense encoder matmul, then everything else sparse.

Forward: pre = (x - b_dec) @ W_enc + b_enc (one dense matmul), the k largest per token,
and a decode that reads only the k chosen rows of W_dec per token (embedding_bag).
Backward: only the chosen (token, latent) pairs carry gradient, so
    grad of the chosen values   = <grad_out[token], W_dec[latent]>   (sampled matmul, SDDMM)
    grad W_dec[latent]         += value * grad_out[token]            (sparse @ dense)
    grad W_enc[:, latent]      += grad_value * sae_in[token]         (sparse @ dense)
    grad b_enc[latent]         += grad_value
    grad b_dec                  = -W_enc @ grad b_enc                (the encoder's share; exact)
Nothing of size [batch, d_sae] is made in the backward, which is where dense autograd
spends most of its time (a second and third full-size matmul).

The two Functions compose: `topk_encode` gives (values, indices) and `sparse_decode`
turns any (values, indices) into a reconstruction, so the AuxK loss reuses both. The decode
and the encoder's gradients take entries in any number per token (a CSR list), so the ReLU
path (sparse_relu.py) uses them too.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch.nn import functional as F

from saescope.kernels import topk_rows

_WORKSPACE: dict[tuple, torch.Tensor] = {}


def workspace(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A scratch tensor reused across steps (its contents are overwritten by each user)."""
    key = (shape, dtype, device)
    if key not in _WORKSPACE:
        _WORKSPACE.clear()  # keep at most one: shapes change only between runs
        _WORKSPACE[key] = torch.empty(shape, dtype=dtype, device=device)
    return _WORKSPACE[key]


def latent_order(flat: torch.Tensor, d_sae: int) -> torch.Tensor:
    """Stable argsort of latent ids [m]. On CPU with d_sae < 2^16, numpy's radix sort of uint16:
    O(m) on one thread, 10-50x faster than torch's parallel sort when the cores are busy."""
    if flat.device.type == "cpu" and d_sae <= np.iinfo(np.uint16).max + 1:
        keys = flat.numpy().astype(np.uint16)
        return torch.from_numpy(np.argsort(keys, kind="stable"))
    return torch.argsort(flat, stable=True)


def rows_by_latent(
    latents: torch.Tensor,
    tokens: torch.Tensor,
    weights: torch.Tensor,
    rows: torch.Tensor,
    d_sae: int,
) -> torch.Tensor:
    """[d_sae, d]: each latent's sum of weight * rows[token] over its entries (latents, tokens,
    weights) [m]; the product of the sparse [d_sae, n_tokens] entry matrix with rows [n_tokens, d].

    An embedding_bag over the entries sorted by latent: on CPU ~3x faster than torch.sparse.mm
    of the same COO matrix, and it writes each output row once instead of zero-filling first.
    """
    order = latent_order(latents, d_sae)
    starts = torch.zeros(d_sae, dtype=torch.long, device=latents.device)
    torch.cumsum(torch.bincount(latents, minlength=d_sae)[:-1], 0, out=starts[1:])
    return F.embedding_bag(
        tokens[order], rows, starts, per_sample_weights=weights[order], mode="sum"
    )


def sampled_dot(
    grad_out: torch.Tensor, W_dec: torch.Tensor, crow: torch.Tensor, latents: torch.Tensor
) -> torch.Tensor:
    """[m]: <grad_out[t], W_dec[latent]> for the entries of token t, latents[crow[t]:crow[t + 1]]
    (a sampled matmul, SDDMM: computed only at those pairs)."""
    with (
        warnings.catch_warnings()
    ):  # "CSR support is in beta": sampled_addmm on CPU is what we need
        warnings.simplefilter("ignore", UserWarning)
        pattern = torch.sparse_csr_tensor(
            crow, latents, grad_out.new_zeros(latents.numel()), (grad_out.shape[0], W_dec.shape[0])
        )
    return torch.sparse.sampled_addmm(pattern, grad_out, W_dec.T, beta=0.0).values()


def encoder_grads(
    needs_input_grad: tuple[bool, ...],
    sae_in: torch.Tensor,
    W_enc: torch.Tensor,
    latents: torch.Tensor,
    tokens: torch.Tensor,
    grad_pre: torch.Tensor,
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Gradients of (W_enc, b_enc, b_dec) [needs_input_grad[1:4]] of an encoder whose only live
    pre-activations are the entries (latents, tokens) [m], with gradients grad_pre [m]."""
    d_sae = W_enc.shape[1]
    grad_W_enc = None
    if needs_input_grad[1]:
        # [d_in, d_sae] as the transpose of [d_sae, d_in]: no copy when W_enc is stored
        # latent-major (the trainer does that); autograd copies it into W_enc's layout otherwise
        grad_W_enc = rows_by_latent(latents, tokens, grad_pre, sae_in, d_sae).T
    per_latent = torch.zeros(d_sae, dtype=grad_pre.dtype, device=grad_pre.device)
    per_latent.index_add_(0, latents, grad_pre)  # [d_sae]
    return grad_W_enc, *bias_grads(needs_input_grad, W_enc, per_latent)


def bias_grads(
    needs_input_grad: tuple[bool, ...],
    W_enc: torch.Tensor,
    per_latent: torch.Tensor,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gradients of (b_enc, b_dec) [needs_input_grad[2:4]] from the pre-activations' gradient
    summed over tokens, per_latent [d_sae]."""
    # b_dec: sum over tokens of -(grad_pre @ W_enc.T) == -W_enc @ (grad_pre summed per latent)
    return (
        per_latent if needs_input_grad[2] else None,
        -(W_enc @ per_latent) if needs_input_grad[3] else None,
    )


def token_of_entries(n_tokens: int, k: int, device: torch.device) -> torch.Tensor:
    """[n_tokens * k]: the token of each entry of a flattened [n_tokens, k]."""
    return torch.arange(n_tokens, device=device).repeat_interleave(k)


class TopKEncode(torch.autograd.Function):
    """(x [n, d_in], W_enc [d_in, d_sae], b_enc [d_sae], b_dec [d_in], k) ->
    values [n, k], indices [n, k].

    values are ReLU'd; indices carry no gradient. grad for x is computed only when x needs it.
    """

    @staticmethod
    def forward(ctx, x, W_enc, b_enc, b_dec, k: int):
        sae_in = x - b_dec  # [n, d_in]
        pre = workspace((x.shape[0], W_enc.shape[1]), x.dtype, x.device)  # [n, d_sae]
        # mm into a reused buffer (a fresh 100+ MB allocation per step costs page faults); the
        # bias is added inside the top-k, so the buffer is read once and not written again
        torch.mm(sae_in, W_enc, out=pre)
        values, indices = topk_rows(pre, b_enc, k)
        values = values.clamp_min_(0.0)
        ctx.save_for_backward(sae_in, W_enc, values, indices)
        ctx.mark_non_differentiable(indices)
        return values, indices

    @staticmethod
    def backward(ctx, grad_values, _grad_indices):  # type: ignore[override]
        sae_in, W_enc, values, indices = ctx.saved_tensors
        grad_pre = grad_values * (values > 0)  # [n, k]: ReLU's gradient at the chosen latents
        n, k = indices.shape
        grads = encoder_grads(
            ctx.needs_input_grad,
            sae_in,
            W_enc,
            indices.reshape(-1),
            token_of_entries(n, k, indices.device),
            grad_pre.reshape(-1),
        )
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = F.embedding_bag(indices, W_enc.T, per_sample_weights=grad_pre, mode="sum")
        return grad_x, *grads, None


class SparseDecode(torch.autograd.Function):
    """(values [m], latents [m], tokens [m], crow [n + 1], W_dec [d_sae, d_out]) -> [n, d_out]:
    each token's sum of values * W_dec[latent] over its entries crow[t]:crow[t + 1]."""

    @staticmethod
    def forward(ctx, values, latents, tokens, crow, W_dec):
        ctx.save_for_backward(values, latents, tokens, crow, W_dec)
        return F.embedding_bag(latents, W_dec, crow[:-1], per_sample_weights=values, mode="sum")

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        values, latents, tokens, crow, W_dec = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        grad_values = grad_W_dec = None
        if ctx.needs_input_grad[0]:
            grad_values = sampled_dot(grad_out, W_dec, crow, latents)
        if ctx.needs_input_grad[4]:
            grad_W_dec = rows_by_latent(
                latents, tokens, values, grad_out, W_dec.shape[0]
            )  # [d_sae, d_out]
        return grad_values, None, None, None, grad_W_dec


def topk_encode(
    x: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, b_dec: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """x [n, d_in] -> (values [n, k] >= 0, indices [n, k]) with the sparse backward."""
    return TopKEncode.apply(x, W_enc, b_enc, b_dec, k)


def sparse_decode(values: torch.Tensor, indices: torch.Tensor, W_dec: torch.Tensor) -> torch.Tensor:
    """values, indices [n, k] -> values @ W_dec rows: [n, d_out] (no
    bias), with the sparse backward."""
    n, k = indices.shape
    crow = torch.arange(0, n * k + 1, k, device=indices.device)
    return ragged_decode(
        values.reshape(-1), indices.reshape(-1), token_of_entries(n, k, indices.device), crow, W_dec
    )


def ragged_decode(
    values: torch.Tensor,
    latents: torch.Tensor,
    tokens: torch.Tensor,
    crow: torch.Tensor,
    W_dec: torch.Tensor,
) -> torch.Tensor:
    """Entries [m] in token order (token t's are crow[t]:crow[t + 1]) -> [n,
    d_out], with the sparse backward."""
    return SparseDecode.apply(values, latents, tokens, crow, W_dec)
