"""Activations straight from the model: run it over corpus contexts and
yield the hook points asked for."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from saescope.corpus import CorpusConfig, iter_context_batches
from saescope.models import HookedModel


def iter_model_activations(
    model: HookedModel,
    corpus: CorpusConfig,
    hooks: list[str],
    batch_size: int,
    skip_contexts: int = 0,
) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """(token_ids [batch, ctx], {hook: acts [batch, ctx, d]}); the
    forward stops after the deepest hook."""
    model.check_hooks(hooks)
    model.check_context_length(corpus.context_length)
    for tokens in iter_context_batches(
        corpus, model.tokenizer, batch_size, skip_contexts=skip_contexts
    ):
        yield tokens, model.run_with_cache(tokens.to(model.device), hooks, stop_early=True)
