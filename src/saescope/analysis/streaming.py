"""The streaming pass: the model up to the hook point, the SAE's encoder, and every feature's
accumulators, over the corpus's contexts in order (checkpointed as it goes).

Shards: stream_pass over context ranges [start, stop) and FeatureAccumulators.merge give the
same accumulators as one pass. Contexts the spool accepts run through the whole model, and their
hook and final activations go into it for the example pass to read back.
"""

from __future__ import annotations

from pathlib import Path

import torch

from saescope.analysis.accumulators import FeatureAccumulators, accumulators_for
from saescope.analysis.checkpoint import save_analysis_checkpoint
from saescope.analysis.config import AnalysisConfig
from saescope.analysis.sparse import sparse_codes
from saescope.analysis.spool import ActivationSpool
from saescope.corpus import iter_context_batches
from saescope.models import HookedModel
from saescope.progress import progress_bar
from saescope.sae import SAE


def stream_pass(
    model: HookedModel,
    sae: SAE,
    cfg: AnalysisConfig,
    acc: FeatureAccumulators | None = None,
    start: int = 0,
    stop: int | None = None,
    checkpoint: Path | None = None,
    progress: bool = True,
    spool: ActivationSpool | None = None,
) -> FeatureAccumulators:
    """Accumulate contexts [start, stop) (default: all cfg.n_contexts) into acc; with
    `checkpoint`, save the accumulators there every cfg.checkpoint_every tokens (atomically).
    Contexts the spool accepts run through the whole model and their activations go into it;
    the others stop at the hook."""
    acc = acc or accumulators_for(sae, cfg)
    stop = cfg.n_contexts if stop is None else min(stop, cfg.n_contexts)
    C = cfg.context_length
    first = 0 if cfg.include_bos or not cfg.corpus.prepend_bos else 1  # BOS positions left out
    positions = torch.arange(first, C)
    hook = sae.hook_name
    bar = progress_bar(
        total=(stop - start) * C, unit="tok", unit_scale=True, desc="analyse", disable=not progress
    )
    context, since_checkpoint = start, 0
    if start < stop:
        for tokens in iter_context_batches(
            cfg.corpus, model.tokenizer, cfg.batch_size, skip_contexts=start
        ):
            tokens = tokens[: stop - context]
            spooled = min(len(tokens), spool.room(context)) if spool is not None else 0
            cache = model.run_with_cache(
                tokens.to(model.device),
                spool.hooks if spool is not None and spooled else [hook],
                stop_early=True,
            )
            if spool is not None and spooled:
                spool.append({name: acts[:spooled] for name, acts in cache.items()})
            x = cache[hook][:, first:]
            rows, features, values = sparse_codes(sae, x.reshape(-1, sae.d_in))
            # each activation's global token index: [contexts, positions] flattened
            contexts = context + torch.arange(len(tokens))
            token_index = (contexts[:, None] * C + positions).reshape(-1)
            acc.update(features, token_index[rows], values, seen=token_index)
            context += len(tokens)
            since_checkpoint += tokens.numel()
            bar.update(tokens.numel())
            last = context >= stop  # the final save comes after the loop
            if checkpoint is not None and since_checkpoint >= cfg.checkpoint_every and not last:
                save_analysis_checkpoint(checkpoint, acc, context, cfg, sae, spool)
                since_checkpoint = 0
            if last:
                break
    bar.close()
    if checkpoint is not None:
        save_analysis_checkpoint(checkpoint, acc, context, cfg, sae, spool)
    return acc
