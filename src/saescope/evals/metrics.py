"""Evaluating an SAE on its model and hook point: reconstruction, downstream loss, feature density.

For each batch of token contexts, three forward passes of the model:
    clean       (capturing the activations x at the hook)
    spliced     the SAE's reconstruction replaces x at the hook
    ablated     zeros replace x at the hook
The first position of a context that starts with BOS is left clean in both replacements and
excluded from the reconstruction metrics: its activations are outliers (huge norm) that no
SAE is trained on, and splicing them would measure that alone.

Definitions (n tokens, d = d_in):
    mse                 mean over tokens and dimensions of (recon - x)^2
    fvu                 sum ||recon - x||^2 / sum ||x - mean(x)||^2 over all tokens
    explained_variance  1 - fvu
    l0                  mean number of active latents per token
    ce_loss_*           next-token cross-entropy (nats): SAE spliced in / clean / zero-ablated
    ce_loss_recovered   (ce_ablated - ce_sae) / (ce_ablated - ce_clean)
    kl_div              mean over tokens of KL(clean || spliced) of the next-token distributions
    unfired_fraction    latents active on no evaluated token (not "dead": over a short eval
                        most rare latents simply did not fire; dead/dense come from the longest
                        window saescope has, training's or the analysis's)
    dense_fraction      latents active on more than dense_threshold of the tokens
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn import functional as F

from saescope.sae import SAE


@dataclass
class EvalAccumulator:
    """Running sums over every evaluated token, so any number of batches gives exact totals."""

    d_sae: int
    n_tokens: int = 0  # tokens in the reconstruction metrics
    sq_error: float = 0.0
    sum_x: torch.Tensor | None = None  # [d_in] float64
    sum_sq_x: float = 0.0
    active: float = 0.0
    fire_counts: torch.Tensor = field(default=None)  # type: ignore[assignment]  # int64 [d_sae]
    n_predictions: int = 0  # next-token predictions in the CE / KL metrics
    ce_clean: float = 0.0
    ce_sae: float = 0.0
    ce_ablated: float = 0.0
    kl: float = 0.0

    def __post_init__(self) -> None:
        self.fire_counts = torch.zeros(self.d_sae, dtype=torch.long)

    def add_reconstruction(self, x: torch.Tensor, recon: torch.Tensor, acts: torch.Tensor) -> None:
        """x, recon: [n, d_in]; acts: [n, d_sae] (the SAE's feature activations)."""
        x64 = x.double()
        self.n_tokens += x.shape[0]
        self.sq_error += float((recon.double() - x64).pow(2).sum())
        self.sum_x = x64.sum(dim=0) if self.sum_x is None else self.sum_x + x64.sum(dim=0)
        self.sum_sq_x += float(x64.pow(2).sum())
        active = acts > 0
        self.active += float(active.sum())
        self.fire_counts += active.sum(dim=0).cpu()

    def add_logits(
        self,
        tokens: torch.Tensor,
        clean: torch.Tensor,
        spliced: torch.Tensor,
        ablated: torch.Tensor,
    ) -> None:
        """tokens [b, ctx]; logits [b, ctx, vocab]. Predictions of positions 1.. from 0..ctx-2."""
        targets = tokens[:, 1:].reshape(-1)
        n = targets.numel()
        logp_clean = next_token_logprobs(clean)
        logp_sae = next_token_logprobs(spliced)
        self.ce_clean += float(F.nll_loss(logp_clean, targets, reduction="sum"))
        self.ce_sae += float(F.nll_loss(logp_sae, targets, reduction="sum"))
        self.ce_ablated += float(F.nll_loss(next_token_logprobs(ablated), targets, reduction="sum"))
        self.kl += float(F.kl_div(logp_sae, logp_clean, log_target=True, reduction="sum"))
        self.n_predictions += n

    def results(self, dense_threshold: float = 0.1) -> dict[str, Any]:
        d_in = self.sum_x.shape[0] if self.sum_x is not None else 1
        n = max(self.n_tokens, 1)
        total_variance = (
            self.sum_sq_x - float(self.sum_x.pow(2).sum()) / n if self.sum_x is not None else 0.0
        )
        fvu = self.sq_error / total_variance if total_variance > 0 else float("nan")
        density = self.fire_counts.double() / n
        out: dict[str, Any] = {
            "n_tokens": self.n_tokens,
            "l0": self.active / n,
            "mse": self.sq_error / (n * d_in),
            "fvu": fvu,
            "explained_variance": 1 - fvu,
            "unfired_fraction": float((self.fire_counts == 0).double().mean()),
            "dense_fraction": float((density > dense_threshold).double().mean()),
        }
        if self.n_predictions:
            p = self.n_predictions
            ce_clean, ce_sae, ce_ablated = self.ce_clean / p, self.ce_sae / p, self.ce_ablated / p
            gap = ce_ablated - ce_clean
            out.update(
                ce_loss_clean=ce_clean,
                ce_loss_sae=ce_sae,
                ce_loss_ablated=ce_ablated,
                ce_loss_recovered=(ce_ablated - ce_sae) / gap if gap != 0 else float("nan"),
                kl_div=self.kl / p,
                n_predictions=p,
            )
        return out

    def log10_density(self) -> torch.Tensor:
        """[d_sae]: log10 of each latent's firing fraction (-inf for latents that never fired)."""
        return torch.log10(self.fire_counts.double() / max(self.n_tokens, 1))


def next_token_logprobs(logits: torch.Tensor) -> torch.Tensor:
    """logits [b, ctx, vocab] -> log-probabilities of positions 0..ctx-2: [b * (ctx-1), vocab]."""
    return F.log_softmax(logits[:, :-1].float(), dim=-1).reshape(-1, logits.shape[-1])


@torch.no_grad()
def evaluate_batch(
    sae: SAE,
    model: Any,
    hook: str,
    tokens: torch.Tensor,
    acc: EvalAccumulator,
    skip_first: bool,
    with_ce: bool = True,
) -> None:
    """Add one batch of contexts tokens [b, ctx] to acc."""
    start = 1 if skip_first else 0
    captured: dict[str, torch.Tensor] = {}

    def capture(x: torch.Tensor) -> None:
        captured["x"] = x.detach()

    def splice(x: torch.Tensor) -> torch.Tensor:
        acts = sae.encode(x[:, start:])
        recon = sae.decode(acts).to(x.dtype)
        captured["acts"], captured["recon"] = acts, recon
        return torch.cat([x[:, :start], recon], dim=1)

    def ablate(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[:, :start], torch.zeros_like(x[:, start:])], dim=1)

    if with_ce:
        clean = model.run_with_replacement(tokens, {hook: capture})
        spliced = model.run_with_replacement(tokens, {hook: splice})
        ablated = model.run_with_replacement(tokens, {hook: ablate})
        acc.add_logits(tokens, clean, spliced, ablated)
    else:
        captured["x"] = model.run_with_cache(tokens, [hook])[hook]
        splice(captured["x"])
    x = captured["x"][:, start:]
    d_in, d_sae = x.shape[-1], captured["acts"].shape[-1]
    acc.add_reconstruction(
        x.reshape(-1, d_in).float(),
        captured["recon"].reshape(-1, d_in).float(),
        captured["acts"].reshape(-1, d_sae),
    )
