"""The SAE architectures: ReLU (L1), TopK, BatchTopK, JumpReLU, Gated, Matryoshka BatchTopK.

Each class only says how pre-activations become feature activations, plus the tensors it
owns (thresholds, gate biases). Transcoders are any of these with d_out / hook_name_out set
(and W_skip when cfg.skip_connection). The training pieces (JumpReLU straight-through
estimators, batch-level top-k) live here too, next to the inference code they must match.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from saescope.errors import SaescopeError
from saescope.sae.base import SAE
from saescope.sae.config import SAEConfig

# ---- JumpReLU straight-through pieces (Rajamanoharan et al. 2024, "Jumping Ahead") ------------


def rectangle(z: torch.Tensor) -> torch.Tensor:
    """The rectangle kernel: 1 on (-1/2, 1/2), 0 elsewhere."""
    return ((z > -0.5) & (z < 0.5)).to(z.dtype)


class JumpReLUFunction(torch.autograd.Function):
    """x * (x > threshold), with a rectangle-kernel pseudo-derivative for the threshold."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, threshold: torch.Tensor, bandwidth: float) -> torch.Tensor:  # type: ignore[override]
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
    def forward(ctx, x: torch.Tensor, threshold: torch.Tensor, bandwidth: float) -> torch.Tensor:  # type: ignore[override]
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
    return JumpReLUFunction.apply(x, threshold, bandwidth)  # type: ignore[return-value]


def step(x: torch.Tensor, threshold: torch.Tensor, bandwidth: float = 0.001) -> torch.Tensor:
    """Differentiable Heaviside step (x > threshold) for the L0 penalty."""
    return StepFunction.apply(x, threshold, bandwidth)  # type: ignore[return-value]


# ---- top-k selection --------------------------------------------------------------------------


def topk_sparse(hidden_pre: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """hidden_pre [..., d_sae] -> (values [..., k] after ReLU, indices [..., k])."""
    values, indices = hidden_pre.topk(k, dim=-1, sorted=False)
    return F.relu(values), indices


def auxk_topk(
    hidden_pre: torch.Tensor, dead_mask: torch.Tensor, k_aux: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """AuxK (Gao et al. 2024): the k_aux largest pre-activations among dead features only.

    hidden_pre [..., d_sae], dead_mask [d_sae] (True = dead) -> (values [..., k], indices [..., k]),
    k = min(k_aux, number of dead features); decode them to predict the main reconstruction's residual.
    """
    k = min(k_aux, int(dead_mask.sum()))
    masked = torch.where(dead_mask, hidden_pre, torch.full_like(hidden_pre, float("-inf")))
    return topk_sparse(masked, k) if k > 0 else (hidden_pre[..., :0], hidden_pre[..., :0].long())


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


# ---- architectures ----------------------------------------------------------------------------


class StandardSAE(SAE):
    """ReLU SAE, trained with an L1 penalty: acts = relu(hidden_pre)."""

    architecture = "standard"

    def activation(self, hidden_pre: torch.Tensor) -> torch.Tensor:
        return F.relu(hidden_pre)


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
        values, indices = topk_sparse(self.scaled_pre(hidden_pre), self.cfg.k)  # type: ignore[arg-type]
        return scatter_dense(values, indices, self.d_sae)

    def encode_sparse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [..., d_in] -> (values [..., k], indices [..., k]); pair with decode_sparse."""
        x = x.to(self.dtype)
        x_normed, self._last_stats = self.normalize_input(x)
        hidden_pre = self.pre_acts(self.sae_input(x_normed))
        return topk_sparse(self.scaled_pre(hidden_pre), self.cfg.k)  # type: ignore[arg-type]

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
                "fold_W_dec_norm would change which features a TopK SAE picks (its decoder rows are not unit-norm); "
                "it is safe only with rescale_acts_by_decoder_norm"
            )

    def scale_feature_tensors(self, norms: torch.Tensor) -> None:
        # after folding, hidden_pre already includes the norm
        self.cfg = self.cfg.replace(rescale_acts_by_decoder_norm=False)


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


class GatedSAE(SAE):
    """Gated SAE (Rajamanoharan et al. 2024): a gate path picks features, a magnitude path sizes them.

    gate = (sae_in @ W_enc + b_gate) > 0;  magnitude = relu(sae_in @ (W_enc * exp(r_mag)) + b_mag).
    There is no b_enc: the two paths have their own biases (b_enc is None, as in SAELens).
    """

    architecture = "gated"

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

    def encode_with_stats(self, x: torch.Tensor):  # type: ignore[override]
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


class BatchTopKSAE(SAE):
    """BatchTopK SAE (Bussmann et al. 2024).

    Training keeps the k * n_tokens largest activations of the whole batch (`training_encode`);
    inference uses one global threshold learnt in training: acts = relu(pre) where pre > threshold.
    """

    architecture = "batchtopk"

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
        return batch_topk(acts, self.cfg.k)  # type: ignore[arg-type]

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
                f"fold_W_dec_norm would change a {self.architecture} SAE's outputs (one global threshold, decoder "
                "rows not unit-norm); convert it with to_jumprelu() first"
            )

    def to_jumprelu(self) -> JumpReLUSAE:
        """The same function as a JumpReLU SAE with the global threshold on every feature."""
        from saescope.sae.registry import build_sae  # noqa: PLC0415 (avoid a cycle)

        cfg = self.cfg.replace(architecture="jumprelu", k=None, matryoshka_widths=None)
        sae = build_sae(cfg)
        state = {name: t for name, t in self.state_dict().items() if name != "threshold"}
        state["threshold"] = self.threshold.expand(self.d_sae).clone()
        sae.load_state_dict(state)
        return sae  # type: ignore[return-value]


class MatryoshkaBatchTopKSAE(BatchTopKSAE):
    """Matryoshka BatchTopK SAE (Bussmann et al. 2025): nested prefixes of the dictionary each reconstruct.

    Inference is BatchTopK's (global threshold); cfg.matryoshka_widths gives the nested widths, so
    prefix_reconstructions() can give the per-prefix outputs the training loss sums over.
    """

    architecture = "matryoshka_batchtopk"

    def prefix_reconstructions(self, acts: torch.Tensor) -> list[torch.Tensor]:
        """acts [..., d_sae] -> reconstruction [..., d_out] using features [0, end) for each prefix end."""
        outputs = []
        out = self.b_dec.expand(*acts.shape[:-1], self.d_out)
        start = 0
        for end in self.cfg.matryoshka_widths:  # type: ignore[union-attr]
            out = out + acts[..., start:end] @ self.W_dec[start:end]
            outputs.append(self.denormalize_output(out, self._last_stats))
            start = end
        return outputs
