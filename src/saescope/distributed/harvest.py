"""A harvest whose ranks write disjoint shards of one activation cache.

The cache is cut into shards of P contexts exactly as one process cuts it: shard j holds
contexts [j*P, (j+1)*P) of the corpus stream. Rank r writes the shards j with j % world == r,
each under the name one process would give it, and beside it a small record (.shards/
shard_<j>.json: its contexts and per-hook norm sums). When every shard is there, rank 0 writes
the manifest from the records in shard order, so the cache is the one a single process writes
(the same files, names, manifest and norm statistics; activations to float rounding, since the
model sees other batch groupings). Tokenizing the whole stream on every rank is cheap next to
the model; only a rank's own shards go through the model.

Interrupted, a rank has lost at most the shard it was writing: the records say which shards are
whole, so a resume (on any number of ranks) writes only the missing ones.
"""

from __future__ import annotations

from pathlib import Path

import torch

from saescope.activations.cache import (
    MANIFEST,
    ActivationCache,
    NormStats,
    shard_name,
    storage_dtype,
)
from saescope.activations.harvest import HarvestConfig, contexts_per_shard, open_manifest
from saescope.corpus import iter_context_batches
from saescope.distributed.group import barrier, is_main, local_device, rank, world_size
from saescope.errors import SaescopeError
from saescope.fileio import read_json, save_tensors, write_json
from saescope.models import HookedModel, load_model
from saescope.progress import progress_bar

RECORDS = ".shards"


def record_path(out: Path, index: int) -> Path:
    return out / RECORDS / f"shard_{index:05d}.json"


def done_shards(out: Path) -> set[int]:
    """Shards whose file and record are both whole (a record is written after its shard)."""
    done = set()
    for path in (out / RECORDS).glob("shard_*.json"):
        index = int(path.stem.removeprefix("shard_"))
        if (out / shard_name(index)).exists():
            done.add(index)
    return done


def harvest_distributed(
    cfg: HarvestConfig, model: HookedModel | None = None, progress: bool = True
) -> ActivationCache | None:
    """harvest(cfg) over the ranks of the launched group: the cache on rank 0, None elsewhere."""
    cfg.validate()
    model = model or load_model(cfg.model, device=local_device(cfg.device))
    model.check_hooks(cfg.hooks)
    model.check_context_length(cfg.corpus.context_length)
    out = Path(cfg.out)
    manifest = open_manifest(cfg, model)  # refuses another harvest's directory, on every rank
    barrier()  # every rank has read the directory before rank 0 writes into it
    if manifest.complete:
        return ActivationCache(out) if is_main() else None
    per_shard = contexts_per_shard(cfg, manifest.hooks)
    n_shards = -(-manifest.target_contexts // per_shard)
    if is_main():
        write_json(out / MANIFEST, manifest.to_json())  # claims the directory for this harvest
    barrier()
    write_own_shards(
        cfg, model, out, per_shard, n_shards, manifest.target_contexts, progress and is_main()
    )
    barrier()
    if not is_main():
        return None
    missing = sorted(set(range(n_shards)) - done_shards(out))
    if missing:
        raise SaescopeError(
            f"corpus {cfg.corpus.source!r} ran out before shard {missing[0]} "
            f"({missing[0] * per_shard * cfg.corpus.context_length:,} tokens); "
            f"asked for {cfg.n_tokens:,}."
        )
    write_manifest(out, manifest, n_shards)
    return ActivationCache(out)


def write_own_shards(
    cfg: HarvestConfig,
    model: HookedModel,
    out: Path,
    per_shard: int,
    n_shards: int,
    target: int,
    progress: bool,
) -> None:
    done = done_shards(out)
    mine = [j for j in range(n_shards) if j % world_size() == rank() and j not in done]
    bar = progress_bar(
        total=len(mine) * per_shard * cfg.corpus.context_length * world_size(),
        unit="tok",
        unit_scale=True,
        desc="harvest (all ranks, est.)",
        disable=not progress,
    )
    if mine:
        blocks = iter_context_batches(cfg.corpus, model.tokenizer, per_shard)
        for j, tokens in enumerate(blocks):  # block j of the stream is shard j
            if j > mine[-1]:
                break
            if j not in mine:
                continue
            tokens = tokens[: target - j * per_shard]
            write_shard(cfg, model, out, j, tokens)
            bar.update(tokens.numel() * world_size())
    bar.close()


def write_shard(
    cfg: HarvestConfig, model: HookedModel, out: Path, index: int, tokens: torch.Tensor
) -> None:
    """Shard `index` (tokens [contexts, ctx]) through the model in batches, then its record."""
    dtype = storage_dtype(cfg.dtype)
    parts: dict[str, list[torch.Tensor]] = {h: [] for h in cfg.hooks}
    for start in range(0, len(tokens), cfg.batch_size):
        batch = tokens[start : start + cfg.batch_size].to(model.device)
        for h, a in model.run_with_cache(batch, cfg.hooks, stop_early=True).items():
            parts[h].append(a.to("cpu", dtype))
    acts = {h: torch.cat(p) for h, p in parts.items()}
    save_tensors(
        out / shard_name(index),
        {"tokens": tokens.to(torch.int32), **{f"acts/{h}": a for h, a in acts.items()}},
    )
    skip_first = 1 if cfg.corpus.prepend_bos else 0
    norms = {}
    for h, a in acts.items():
        stats = NormStats()
        stats.update(
            a[:, skip_first:].reshape(-1, a.shape[-1])
        )  # the same per-shard sum one process adds
        norms[h] = [stats.norm_sum, stats.count]
    write_json(
        record_path(out, index),
        {"file": shard_name(index), "contexts": len(tokens), "norms": norms},
    )


def write_manifest(out: Path, manifest, n_shards: int) -> None:
    """The manifest from the shard records, in shard order (the norm sums
    added as one process adds them)."""
    manifest.shards, manifest.norms = [], {}
    for j in range(n_shards):
        record = read_json(record_path(out, j))
        manifest.shards.append({"file": record["file"], "contexts": record["contexts"]})
        for h, (norm_sum, count) in record["norms"].items():
            stats = manifest.norms.setdefault(h, NormStats())
            stats.norm_sum += norm_sum
            stats.count += count
    write_json(out / MANIFEST, manifest.to_json())
