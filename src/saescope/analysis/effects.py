"""A feature's effect on next-token log-probs: through the direct path, and by real ablation.

Direct path: remove the feature's contribution c = alpha * u_f from the final residual r (the
final norm's input) and recompute the final norm on r - c, exactly as the model does:

    logits(r - c) = (sigma(r) * (logits(r) - beta) - alpha * D_f) / sigma(r - c) + beta

where D_f = direction_logits(u_f) (norm weight and centring folded in), sigma the norm's
data-dependent scale (RMS or standard deviation, with its epsilon) and beta = unembed(0) (the
norm's and head's biases). This costs O(d_vocab) per position instead of a d_model x d_vocab
matmul. It is checked against model.unembed(r - c) once; a model where it does not hold (a
logit soft-cap, an unknown norm) gets model.unembed(r - c) for every row instead.

The analysis needs log p_with - log p_without = diff - (lse(logits) - lse(logits - diff)) with
diff = logits(r) - logits(r - c) = (1 - sigma(r) / sigma(r - c)) * (logits(r) - beta) + alpha /
sigma(r - c) * D_f: logits(r) and lse(logits(r)) are computed once per position and shared by every
feature active there, and each (position, feature) pair costs one pass over the vocabulary: the C++
kernel (kernels/cell_effects.cpp, ~26 us a pair on 2 cores for d_vocab 49,152) computes diff, the
online logsumexp and the top / bottom tokens in one read of logits(r) and D_f; torch's ops, its
fallback, take ~8 passes (~370 us a pair).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from saescope import kernels
from saescope.errors import SaescopeError
from saescope.models import HookedModel
from saescope.sae import SAE, InputStats


@dataclass
class LogprobEffects:
    """effects of a feature on log p at some positions: rows [n]."""

    next_token: torch.Tensor  # [n] change in log p(actual next token) (0 where no next token)
    boosted_ids: torch.Tensor  # [n, n_hover]
    boosted_values: torch.Tensor  # [n, n_hover] > 0
    suppressed_ids: torch.Tensor  # [n, n_hover]
    suppressed_values: torch.Tensor  # [n, n_hover] < 0


def logprob_effects(
    logits_with: torch.Tensor, logits_without: torch.Tensor, next_ids: torch.Tensor, n_hover: int
) -> LogprobEffects:
    """logits [n, d_vocab] with and without the feature, next_ids [n] (-1: none) -> log p effects
    (LogprobEffects)."""
    without = logits_without.float()
    diff = logits_with.float() - without
    shift = torch.logsumexp(without, -1) - torch.logsumexp(logits_with.float(), -1)
    return effects_from_diff(diff, shift, next_ids, n_hover)


def effects_from_diff(
    diff: torch.Tensor, shift: torch.Tensor, next_ids: torch.Tensor, n_hover: int
) -> LogprobEffects:
    """diff [n, d_vocab] = logits_with - logits_without, shift [n] = lse_without - lse_with: the
    change in log p of token t is diff[t] + shift (no log-softmax copies: this is memory-bound)."""
    shift = shift[:, None]
    has_next = next_ids >= 0
    on_next = diff.gather(1, next_ids.clamp_min(0)[:, None]) + shift
    up = diff.topk(n_hover, dim=1)
    down = diff.topk(n_hover, dim=1, largest=False)
    return LogprobEffects(
        torch.where(has_next, on_next[:, 0], 0.0),
        up.indices,
        up.values + shift,
        down.indices,
        down.values + shift,
    )


def effects_of_removal(
    with_f: torch.Tensor,
    diff: torch.Tensor,
    lse_with: torch.Tensor,
    next_ids: torch.Tensor,
    n_hover: int,
) -> LogprobEffects:
    """Logits with the feature [n, d_vocab] (overwritten: they become the logits without it), diff
    [n, d_vocab] = with - without, and lse_with [n] their logsumexp -> effects on log p."""
    lse_without = torch.logsumexp(with_f.sub_(diff), -1)
    return effects_from_diff(diff, lse_without - lse_with, next_ids, n_hover)


def diff_from_scales(
    logits: torch.Tensor,
    beta: torch.Tensor | None,
    a: torch.Tensor,
    b: torch.Tensor,
    direction_logits: torch.Tensor,
) -> torch.Tensor:
    """logits [n, d_vocab], beta [d_vocab] (None: zero), a and b [n, 1], D_f [n, d_vocab] -> the
    direct-path diff."""
    centred = logits - beta if beta is not None else logits
    return torch.addcmul(direction_logits.float() * b, centred, a)


def direct_effects(
    logits: torch.Tensor,
    lse: torch.Tensor,
    direction_logits: torch.Tensor,
    cell_pos: torch.Tensor,
    cell_feat: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    beta: torch.Tensor | None,
    next_ids: torch.Tensor,
    n_hover: int,
    row_chunk: int = 32,
) -> LogprobEffects:
    """Effects of cells [n] = (position cell_pos, feature cell_feat) through the direct path: clean
    logits [P, d_vocab] and their logsumexp [P] per position, D [F, d_vocab] per feature, a and b
    [n] or [n, 1].

    The C++ kernel reads each cell's logits and D row once (~8 torch passes over d_vocab otherwise);
    torch does the rest (kernels not built, other dtypes), row_chunk cells at a time so its
    temporaries stay in cache."""
    inputs = (logits, lse, direction_logits, a, b) + (() if beta is None else (beta,))
    fits = all(t.dtype == torch.float32 and t.device.type == "cpu" for t in inputs)
    if fits and n_hover <= kernels.CELL_EFFECTS_MAX_H and kernels.available():
        return LogprobEffects(
            *kernels.cell_effects(
                logits, lse, direction_logits, cell_pos, cell_feat, a, b, beta, next_ids, n_hover
            )
        )
    parts = []
    for start in range(0, max(len(cell_pos), 1), row_chunk):  # one empty chunk for no cells
        pos, cut = cell_pos[start : start + row_chunk], slice(start, start + row_chunk)
        with_f = logits[pos].float()  # a copy: becomes the logits without the feature below
        diff = diff_from_scales(
            with_f,
            beta,
            a[cut].reshape(-1, 1),
            b[cut].reshape(-1, 1),
            direction_logits[cell_feat[cut]],
        )
        parts.append(effects_of_removal(with_f, diff, lse[pos], next_ids[cut], n_hover))
    return LogprobEffects(
        *(torch.cat([getattr(p, f.name) for p in parts]) for f in fields(LogprobEffects))
    )


def contributions(
    sae: SAE, values: torch.Tensor, features: torch.Tensor, stats: InputStats | None
) -> torch.Tensor:
    """What features [n] at activations values [n] add to the SAE's output: [n, d_out], in the
    hook's units (input normalisation undone with each token's statistics)."""
    idx, zero = features[:, None], torch.zeros_like(values)[:, None]
    return sae.decode_sparse(values[:, None], idx, stats) - sae.decode_sparse(zero, idx, stats)


def rows_of_stats(
    stats: InputStats | None, rows: torch.Tensor, positions: torch.Tensor
) -> InputStats | None:
    """Per-token statistics [b, ctx, 1] -> those of the given (row, position) pairs: [n, 1]."""
    if stats is None:
        return None
    pick = {name: getattr(stats, name) for name in ("scale", "shift", "std")}
    return InputStats(**{k: None if v is None else v[rows, positions] for k, v in pick.items()})


class DirectPath:
    """Logits of final residuals with a feature's direct contribution removed."""

    def __init__(self, model: HookedModel) -> None:
        self.model = model
        norm = getattr(model, "final_norm", None)
        self.centres = isinstance(norm, nn.LayerNorm)
        self.eps = _norm_eps(norm)
        self.beta = model.unembed(
            torch.zeros(1, model.d_model, dtype=model.dtype, device=model.device)
        )[0].float()
        self.has_beta = bool(self.beta.abs().max() > 0)  # RMSNorm and a head without bias: none
        self.exact = self.eps is None or bool(getattr(model, "softcap", None))
        self.checked = False

    def sigma(self, x: torch.Tensor) -> torch.Tensor:
        """The norm's data-dependent scale [n, 1]."""
        if self.eps is None:
            raise SaescopeError(
                "the final norm's epsilon is unknown: its scale cannot be worked out"
            )
        if self.centres:
            x = x - x.mean(dim=-1, keepdim=True)
        return (x.pow(2).mean(dim=-1, keepdim=True) + self.eps).sqrt()

    @property
    def fast(self) -> bool:
        """Whether diff = a * (logits - beta) + b * D_f (a, b from scales()) is known to hold."""
        return self.checked and not self.exact

    @staticmethod
    def removed(resid: torch.Tensor, alpha: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
        """resid [n, d_model] less the contributions alpha [n] * direction [n, d_model]."""
        return resid - alpha[:, None].to(resid.dtype) * direction.to(resid.dtype)

    @torch.no_grad()
    def scales(
        self, resid: torch.Tensor, removed: torch.Tensor, alpha: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """resid [n, d_model], removed = resid - alpha * u_f, alpha [n] -> a = 1 - sigma(resid) /
        sigma(removed), b = alpha / sigma(removed): [n, 1] float32 each."""
        # in float64: 1 - ratio cancels, and these are [n] only
        s_full, s_removed = self.sigma(resid.double()), self.sigma(removed.double())
        return (1 - s_full / s_removed).float(), (alpha.double()[:, None] / s_removed).float()

    @torch.no_grad()
    def logit_diff(
        self,
        resid: torch.Tensor,
        logits: torch.Tensor,
        alpha: torch.Tensor,
        direction: torch.Tensor,
        direction_logits: torch.Tensor,
    ) -> torch.Tensor:
        """resid [n, d_model], logits [n, d_vocab] = unembed(resid) (float32), alpha [n], direction
        [n, d_model] (u_f), direction_logits [n, d_vocab] (D_f) -> logits - unembed(resid - alpha *
        u_f): [n, d_vocab]."""
        removed = self.removed(resid, alpha, direction)
        if self.exact:
            return logits - self.model.unembed(removed).float()
        a, b = self.scales(resid, removed, alpha)
        diff = diff_from_scales(
            logits, self.beta if self.has_beta else None, a, b, direction_logits
        )
        if not self.checked:  # once: the identity holds for this model's norm, or use the slow path
            slow = logits[:4] - self.model.unembed(removed[:4]).float()
            self.exact = not torch.allclose(diff[:4], slow, atol=1e-3, rtol=1e-3)
            self.checked = True
            if self.exact:
                return logits - self.model.unembed(removed).float()
        return diff


def _norm_eps(norm: nn.Module | None) -> float | None:
    """The epsilon of an RMSNorm / LayerNorm (None: an unknown kind of norm)."""
    for name in ("variance_epsilon", "eps", "epsilon"):
        value = getattr(norm, name, None)
        if isinstance(value, float | int):
            return float(value)
    return None
