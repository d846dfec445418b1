"""What each feature's decoder direction does, from the weights alone: logit effects through the
unembedding (final-norm weight folded in), nearest features by decoder cosine, aligned neurons."""

from __future__ import annotations

import numpy as np
import torch

from saescope import kernels
from saescope.errors import SaescopeError
from saescope.models import HookedModel
from saescope.models.architectures import get_module
from saescope.models.hf import HFHookedModel
from saescope.models.hooked import parse_hook
from saescope.sae import SAE


def output_hook(sae: SAE) -> str:
    """Where the SAE's decoder writes: the hook point itself, or a transcoder's output hook."""
    return sae.cfg.hook_name_out or sae.hook_name


def residual_directions(model: HookedModel, sae: SAE) -> torch.Tensor:
    """[d_sae, d_model]: what one unit of each feature adds to the residual stream.

    For an SAE on MLP neurons (mlp.hook_post) that is W_dec[f] through the MLP's output
    projection; for every other hook point the decoder row itself."""
    W_dec = sae.W_dec.detach().to(model.dtype)
    layer, kind = parse_hook(output_hook(sae)) or (None, None)
    if kind == "mlp.hook_post":
        if not isinstance(model, HFHookedModel):
            raise SaescopeError(
                f"{model.name}: MLP-neuron directions need a Hugging Face model (its blocks)"
            )
        down = get_module(model.blocks[layer], model.arch.down_proj)
        # [d_model, d_mlp] whichever way the module stores it
        weight = down.weight if isinstance(down, torch.nn.Linear) else down.weight.T
        return W_dec @ weight.detach().T
    return W_dec


@torch.no_grad()
def logit_tables(
    model: HookedModel,
    directions: torch.Tensor,
    n_logits: int,
    n_bins: int,
    keep_budget_bytes: int,
    chunk: int = 256,
) -> tuple[dict[str, np.ndarray], torch.Tensor]:
    """Top / bottom tokens and histogram of each direction's logit effect.

    Returns (tables, D) where D [n_kept, d_vocab] are the logit effects themselves of the first
    n_kept features, as many as fit in keep_budget_bytes (the loss-effect pass reuses them)."""
    d_sae = len(directions)
    n_kept = min(d_sae, keep_budget_bytes // (model.d_vocab * 4))
    kept = torch.empty(n_kept, model.d_vocab)
    out = {
        name: []
        for name in ("top_ids", "top_values", "bottom_ids", "bottom_values", "hist", "range")
    }
    for start in range(0, d_sae, chunk):
        effects = model.direction_logits(directions[start : start + chunk]).float()  # [c, d_vocab]
        if start < n_kept:
            kept[start : start + chunk] = effects[: n_kept - start]
        top = effects.topk(n_logits, dim=1)
        bottom = effects.topk(n_logits, dim=1, largest=False)
        hist, lo, hi = histograms_between_extremes(effects, n_bins)
        for name, value in (
            ("top_ids", top.indices),
            ("top_values", top.values),
            ("bottom_ids", bottom.indices),
            ("bottom_values", bottom.values),
            ("hist", hist),
            ("range", torch.stack([lo, hi], 1)),
        ):
            out[name].append(value)
    tables = {name: torch.cat(parts).numpy() for name, parts in out.items()}
    return tables, kept


def histograms_between_extremes(
    values: torch.Tensor, n_bins: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(counts [n, n_bins], lo [n], hi [n]): each row of values [n, d] in n_bins equal bins between
    its minimum lo and maximum hi. The C++ kernel reads each row twice (~8x faster); torch where it
    is not built."""
    if values.dtype == torch.float32 and values.device.type == "cpu" and kernels.available():
        return kernels.row_histograms(values, n_bins)
    lo, hi = values.min(dim=1).values, values.max(dim=1).values
    return row_histograms(values, lo, (hi - lo).clamp_min(1e-12), n_bins), lo, hi


def row_histograms(
    values: torch.Tensor, lo: torch.Tensor, width: torch.Tensor, n_bins: int
) -> torch.Tensor:
    """Counts [n, n_bins] of each row of values [n, d] in n_bins equal bins, lo [n] to lo + width.

    One bincount over row-offset int32 bins: a scatter_add of int64 ones took 2.5x as long, and
    these are d_sae x d_vocab values."""
    scaled = values.sub(lo[:, None]).div_(width[:, None]).mul_(n_bins)
    bins = scaled.to(torch.int32).clamp_(0, n_bins - 1)
    bins += (torch.arange(len(values), dtype=torch.int32) * n_bins)[:, None]
    return torch.bincount(bins.view(-1), minlength=len(values) * n_bins).view(len(values), n_bins)


@torch.no_grad()
def nearest_by_decoder(
    W_dec: torch.Tensor, n: int, chunk: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """ids [d_sae, n] and cosine similarities [d_sae, n] of the nearest other decoder rows."""
    unit = W_dec.float() / W_dec.float().norm(dim=1, keepdim=True).clamp_min(1e-12)
    d_sae = len(unit)
    k = min(n, d_sae - 1)
    ids = np.full((d_sae, n), -1, dtype=np.int64)
    cos = np.zeros((d_sae, n), dtype=np.float32)
    for start in range(0, d_sae, chunk):
        sims = unit[start : start + chunk] @ unit.T
        sims[torch.arange(len(sims)), torch.arange(start, start + len(sims))] = -torch.inf
        best = sims.topk(k, dim=1)
        ids[start : start + len(sims), :k] = best.indices.numpy()
        cos[start : start + len(sims), :k] = best.values.numpy()
    return ids, cos


def aligned_neurons(sae: SAE, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """For an SAE on MLP neurons: the neurons with the largest |W_dec[f]| and their weights."""
    kind = (parse_hook(output_hook(sae)) or (None, None))[1]
    if kind != "mlp.hook_post":
        return None
    W_dec = sae.W_dec.detach().float()
    top = W_dec.abs().topk(min(n, W_dec.shape[1]), dim=1).indices
    return top.numpy(), W_dec.gather(1, top).numpy()
