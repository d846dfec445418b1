"""Data-parallel activations: every rank sees the same global batches, computed in shares.

The training stream is defined independently of the number of ranks: windows of contexts,
shuffled with a seed, cut into global batches of batch_size tokens (ActivationStore). So a
checkpoint's position (window, batch) means the same on 1 or N ranks, and N ranks train on
exactly the batches one process would. Each rank computes the loss on its slice of each batch.

From a harvested cache every rank reads the windows from disk (reads are cheap next to
training). Live from the model, each rank runs the model on its own share of each window's
contexts only, and the shares are all-gathered: per token that moves d_in activations, far
less than the model forward it saves.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.distributed as dist

from saescope.activations import ActivationStore
from saescope.activations.source import iter_model_activations
from saescope.activations.store import estimate_scaling_factors
from saescope.corpus import CorpusConfig, iter_context_batches
from saescope.distributed.comm import all_gather_uneven
from saescope.distributed.group import active, is_main, rank, world_size
from saescope.models import HookedModel


def share(n: int, rank_: int | None = None, world: int | None = None) -> tuple[int, int]:
    """[start, stop) of rank's contiguous share of n items (the first
    n % world ranks get one more)."""
    rank_ = rank() if rank_ is None else rank_
    world = world_size() if world is None else world
    base, extra = divmod(n, world)
    start = rank_ * base + min(rank_, extra)
    return start, start + base + (1 if rank_ < extra else 0)


def shared_model_source(
    model: HookedModel,
    corpus: CorpusConfig,
    hooks: list[str],
    batch_contexts: int,
    window_contexts: int,
):
    """A SourceFactory yielding whole windows; each rank runs the model on its share of each."""

    def source(skip_contexts: int) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        windows = iter_context_batches(
            corpus, model.tokenizer, window_contexts, skip_contexts=skip_contexts
        )
        for tokens in windows:  # [window, ctx]
            start, stop = share(len(tokens))
            mine = {h: [] for h in hooks}
            for i in range(start, stop, batch_contexts):
                part = tokens[i : min(stop, i + batch_contexts)].to(model.device)
                for h, a in model.run_with_cache(part, hooks, stop_early=True).items():
                    mine[h].append(a.float())
            width = model.hook_points()
            gathered = {}
            for h in hooks:
                local = torch.cat(mine[h]) if mine[h] else torch.zeros(0, tokens.shape[1], width[h])
                gathered[h] = torch.cat(
                    all_gather_uneven(local.cpu())
                )  # [window, ctx, d], in context order
            yield tokens, gathered

    return source


def shared_scaling_factors(
    model: HookedModel,
    corpus: CorpusConfig,
    hooks: list[str],
    batch_contexts: int,
    n_tokens: int,
    skip_first: int,
) -> dict[str, float]:
    """The store's normalisation factors, computed once on rank 0 exactly as one
    process would, then broadcast."""
    factors: list[dict[str, float] | None] = [None]
    if is_main():
        factors[0] = estimate_scaling_factors(
            iter_model_activations(model, corpus, hooks, batch_contexts), n_tokens, skip_first
        )
    if active():
        dist.broadcast_object_list(factors, src=0)
    return factors[0] or {}


def shared_model_store(
    model: HookedModel,
    corpus: CorpusConfig,
    hooks: list[str],
    batch_contexts: int,
    normalize: bool,
    batch_size: int,
    buffer_tokens: int,
    seed: int,
    device: str,
    norm_sample_tokens: int = 2**14,
) -> ActivationStore:
    """ActivationStore.from_model's data-parallel twin: the same batches, the model work shared."""
    skip_first = 1 if corpus.prepend_bos else 0
    window_contexts = max(1, buffer_tokens // corpus.context_length)
    factors = None
    if normalize:
        factors = shared_scaling_factors(
            model, corpus, hooks, batch_contexts, norm_sample_tokens, skip_first
        )
    source = shared_model_source(model, corpus, hooks, batch_contexts, window_contexts)
    return ActivationStore(
        source,
        hooks,
        corpus.context_length,
        batch_size=batch_size,
        buffer_tokens=buffer_tokens,
        scaling_factors=factors,
        exclude_bos=bool(skip_first),
        seed=seed,
        device=device,
    )
