"""The fast ReLU (L1) training path: a dense encoder matmul, then
sparse work while the SAE is sparse.

Once training has pushed L0 down to a few hundred of d_sae latents, a ReLU SAE is as sparse
as a TopK one, only with a different number of active latents per token. The encoder then
hands on its active latents as a ragged (CSR) list: values [m], latents [m], tokens [m] and
crow [n + 1] (the entries of token t are crow[t]:crow[t + 1]); the decoder, its backward and
the encoder's backward read only those m entries, as the TopK path does (sparse_topk.py).

Early in training, when many latents are active, sparse kernels would be slower than dense
matmuls: above DENSE_ABOVE of the batch's [n, d_sae] cells the encoder hands on the dense
activations and everything stays dense (still with no gradient for x, and b_dec's through a
vector-matrix product). The choice depends only on the batch, so a resumed run takes the
same path as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from saescope.sae.training.sparse_topk import bias_grads, encoder_grads, ragged_decode, workspace

# fraction of active cells above which dense matmuls beat the sparse kernels on CPU
DENSE_ABOVE = 0.1


@dataclass
class Active:
    """The active latents of a batch of n tokens: ragged, in token order, while few fire; else
    the dense activations."""

    values: torch.Tensor  # [m], with grad; or, dense regime, the activations [n, d_sae] with grad
    latents: torch.Tensor  # int64 [m] (empty when dense)
    tokens: torch.Tensor  # int64 [m] (empty when dense)
    crow: (
        torch.Tensor
    )  # int64 [n + 1]: token t's entries are crow[t]:crow[t + 1] (empty when dense)
    d_sae: int

    @property
    def dense(self) -> bool:
        return self.values.dim() == 2

    def count(self) -> int:
        return (
            int(torch.count_nonzero(self.values.detach())) if self.dense else self.latents.numel()
        )

    def fire_counts(self) -> torch.Tensor:
        """int64 [d_sae]: tokens on which each latent is active."""
        if self.dense:
            return self.values.detach().sign().sum(dim=0).long()
        return torch.bincount(self.latents, minlength=self.d_sae)

    def weighted_sum(self, weights: torch.Tensor | None) -> torch.Tensor:
        """Sum of all activations, each times weights[latent] if given (differentiable)."""
        if self.dense:
            return self.values.sum() if weights is None else (self.values @ weights).sum()
        return self.values.sum() if weights is None else (self.values * weights[self.latents]).sum()


def _empty_index(device: torch.device) -> torch.Tensor:
    return torch.empty(0, dtype=torch.long, device=device)


class ReLUEncode(torch.autograd.Function):
    """(x [n, d_in], W_enc [d_in, d_sae], b_enc, b_dec) -> relu((x - b_dec) @ W_enc + b_enc) as
    (values [m], latents [m], tokens [m], crow [n + 1]) if at most DENSE_ABOVE of it is non-zero,
    else (acts [n, d_sae], empty, empty, empty). Only values / acts carry gradient."""

    @staticmethod
    def forward(ctx, x, W_enc, b_enc, b_dec):
        sae_in = x - b_dec
        n, d_sae = x.shape[0], W_enc.shape[1]
        pre = workspace((n, d_sae), x.dtype, x.device)
        torch.mm(sae_in, W_enc, out=pre).add_(b_enc)
        active = pre > 0
        if int(torch.count_nonzero(active)) > DENSE_ABOVE * n * d_sae:
            acts = torch.relu(pre)  # a fresh tensor: the workspace is reused next step
            empty = _empty_index(x.device)
            ctx.save_for_backward(sae_in, W_enc, acts)
            ctx.mark_non_differentiable(empty)
            return acts, empty, empty, empty
        tokens, latents = torch.nonzero(active, as_tuple=True)  # row-major: already in CSR order
        values = pre[tokens, latents]
        counts = torch.bincount(tokens, minlength=n)
        crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        ctx.save_for_backward(sae_in, W_enc, latents, tokens)
        ctx.mark_non_differentiable(latents, tokens, crow)
        return values, latents, tokens, crow

    @staticmethod
    def backward(ctx, grad_values, *_):  # type: ignore[override]
        sae_in, W_enc, *rest = ctx.saved_tensors
        if grad_values.dim() == 2:  # dense regime: rest = (acts,)
            grad_pre = grad_values * (rest[0] > 0)
            # [d_sae, d_in] then transposed: the layout the trainer keeps W_enc in
            grad_W_enc = (grad_pre.T @ sae_in).T if ctx.needs_input_grad[1] else None
            return None, grad_W_enc, *bias_grads(ctx.needs_input_grad, W_enc, grad_pre.sum(dim=0))
        latents, tokens = rest
        return None, *encoder_grads(
            ctx.needs_input_grad, sae_in, W_enc, latents, tokens, grad_values
        )


def relu_encode(
    x: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, b_dec: torch.Tensor
) -> Active:
    """x [n, d_in] -> the activations relu((x - b_dec) @ W_enc + b_enc), with the sparse backward.
    x gets no gradient (training data)."""
    values, latents, tokens, crow = ReLUEncode.apply(x.detach(), W_enc, b_enc, b_dec)
    return Active(values, latents, tokens, crow, W_enc.shape[1])


def decode(active: Active, W_dec: torch.Tensor) -> torch.Tensor:
    """[n, d_out]: the activations @ W_dec (no bias); sparse (and its backward) when ragged."""
    if active.dense:
        return active.values @ W_dec
    return ragged_decode(active.values, active.latents, active.tokens, active.crow, W_dec)
