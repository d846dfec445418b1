"""Analysis sharded over tokens: each rank streams its share of the contexts, and the
accumulators are merged with collectives into exactly the single-process accumulators.

Rank r takes the contiguous contexts share(n_contexts)[r]; the accumulators key every
activation by its global token index, and each of their statistics merges exactly
(accumulators.py), so the merge of the ranks' accumulators is the one-pass result: the same
counts, maxima, histograms, top contexts, interval samples and co-firing sample (sums in
float64, equal to rounding). The merge all-gathers each rank's accumulator tensors (their
size is d_sae x (n_exact_top + the interval samples), never tokens x d_sae), so every rank
ends with the merged result. Rank 0 then builds the feature tables and the examples (a short
second pass over the few contexts chosen) and writes the store.

Each rank checkpoints its own share beside the output (<checkpoint>.rank<r>-of-<world>), so an
interrupted pass resumes on the same number of ranks.
"""

from __future__ import annotations

from pathlib import Path

import torch

from saescope.analysis.accumulators import FeatureAccumulators
from saescope.analysis.checkpoint import load_analysis_checkpoint
from saescope.analysis.config import AnalysisConfig
from saescope.analysis.finish import finish_analysis
from saescope.analysis.results import SAEAnalysis
from saescope.analysis.run import prepare_analysis
from saescope.analysis.streaming import stream_pass
from saescope.distributed.comm import all_gather, all_gather_uneven
from saescope.distributed.data import share
from saescope.distributed.group import barrier, is_main, rank, world_size
from saescope.models import HookedModel
from saescope.sae import SAE


def rank_checkpoint(checkpoint: Path, rank_: int | None = None, world: int | None = None) -> Path:
    rank_ = rank() if rank_ is None else rank_
    world = world_size() if world is None else world
    return checkpoint.with_name(f"{checkpoint.name}.rank{rank_}-of-{world}")


def remove_checkpoints(checkpoint: Path) -> None:
    """Every rank's checkpoint file (called by rank 0 once the result is stored)."""
    for path in checkpoint.parent.glob(f"{checkpoint.name}.rank*-of-*"):
        path.unlink(missing_ok=True)
    checkpoint.unlink(missing_ok=True)


def merge_over_ranks(acc: FeatureAccumulators) -> FeatureAccumulators:
    """Every rank's accumulators merged in rank order; the same merged result on every rank."""
    state = acc.state_dict()
    per_rank: list[dict[str, torch.Tensor]] = [{} for _ in range(world_size())]
    for name, tensor in state.items():
        # the co-firing sample has a length of its own on each rank: [3, m] gathered along m
        parts = (
            [t.T for t in all_gather_uneven(tensor.T.contiguous())]
            if name == "cofire"
            else all_gather(tensor)
        )
        for r, part in enumerate(parts):
            per_rank[r][name] = part
    first, *rest = [state_of_rank(acc, r_state) for r_state in per_rank]
    for part in rest:
        first.merge(part)
    return first


def state_of_rank(acc: FeatureAccumulators, state: dict[str, torch.Tensor]) -> FeatureAccumulators:
    """Accumulators shaped like acc holding one rank's state."""
    part = FeatureAccumulators(acc.d_sae, acc.n_top, acc.per_bucket, acc.cofiring_stride, acc.seed)
    part.load_state_dict(state)
    return part


def sharded_stream_pass(
    model: HookedModel,
    sae: SAE,
    cfg: AnalysisConfig,
    checkpoint: Path | None = None,
    progress: bool = True,
) -> FeatureAccumulators:
    """This rank's share of the streaming pass (resumed from its checkpoint), merged over the
    ranks."""
    start, stop = share(cfg.n_contexts)
    acc, own = None, None
    if checkpoint is not None:
        own = rank_checkpoint(checkpoint)
        resumed = load_analysis_checkpoint(own, cfg, sae)
        if resumed is not None:
            acc, start = resumed
    acc = stream_pass(
        model,
        sae,
        cfg,
        acc,
        start=start,
        stop=stop,
        checkpoint=own,
        progress=progress and is_main(),
    )
    return merge_over_ranks(acc)


def analyze_distributed(
    sae: SAE | str | Path,
    cfg: AnalysisConfig | None = None,
    model: HookedModel | str | None = None,
    checkpoint: str | Path | None = None,
    sae_id: str | None = None,
    progress: bool = True,
    stream_examples: bool = False,
) -> SAEAnalysis | None:
    """analysis.analyze over the ranks of the launched group: the result on rank 0, None
    elsewhere."""
    sae, cfg, model, source = prepare_analysis(sae, cfg, model)
    acc = sharded_stream_pass(
        model, sae, cfg, Path(checkpoint) if checkpoint is not None else None, progress
    )
    result = None
    if is_main():
        result = finish_analysis(
            model,
            sae,
            cfg,
            acc,
            sae_id=sae_id,
            source=source,
            progress=progress,
            stream_examples=stream_examples,
        )
    barrier()
    return result
