"""The analysis pass: one streaming pass of the model and the SAE over the corpus, then the results.

    acc = stream_pass(model, sae, cfg, spool=spool)  # the model, encode, accumulate (activations kept in spool)
    result = finish_analysis(model, sae, cfg, acc, spool=spool)  # tables + the example pass

`analyze(...)` does both, with checkpoints of the accumulators (resumable) and progress. With
stream_examples the example pass runs as result.examples is read (by FeatureStore.write_analysis
or save_analysis), so that memory stays bounded by features x kept examples and the batch.
Shards: stream_pass over context ranges [start, stop) and FeatureAccumulators.merge give the
same accumulators as one pass. The spool (analysis.spool; optional) keeps the hook and final
activations of the contexts streamed, so that the example pass reads them instead of running
the model again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from tqdm import tqdm

from saescope.analysis import directions as dirs
from saescope.analysis import tables
from saescope.analysis.accumulators import FeatureAccumulators
from saescope.analysis.config import AnalysisConfig
from saescope.analysis.examples import ExampleBuilder, Wanted
from saescope.analysis.results import (
    EXAMPLE_KINDS,
    Example,
    ExampleStream,
    FeatureTables,
    SAEAnalysis,
)
from saescope.analysis.sparse import sparse_codes
from saescope.analysis.spool import ActivationSpool, final_residual_hook, spool_path
from saescope.corpus import describe_corpus, iter_context_batches
from saescope.errors import SaescopeError
from saescope.fileio import save_tensors
from saescope.models import HookedModel
from saescope.sae import SAE

MIN_LOGIT_TABLE_BUDGET = 2 * 2**30  # bytes of [d_sae, d_vocab] logit effects kept, at least


def logit_table_budget() -> int:
    """Bytes of [d_sae, d_vocab] float32 logit effects to keep for the loss effects: a quarter of the
    memory available now, at least MIN_LOGIT_TABLE_BUDGET. The rows of features past it are
    recomputed through the unembedding for each chunk of cells: for a 16k SAE on SmolLM2 (3 GiB of
    table) recomputing all of them took 167 s of a 329 s analysis, against 12 s for the table once."""
    try:
        with open("/proc/meminfo") as f:
            available = next(
                int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")
            )
    except (OSError, StopIteration, ValueError):  # not Linux: the floor
        return MIN_LOGIT_TABLE_BUDGET
    return max(MIN_LOGIT_TABLE_BUDGET, available // 4)


# --- inputs -------------------------------------------------------------------------------


def find_sae_dir(path: str | Path) -> Path:
    """A run directory (runs/<name>/ with sae/ inside) -> its sae/; anything else as it is."""
    path = Path(path)
    return path / "sae" if (path / "sae" / "cfg.json").exists() else path


def check_sae_fits(model: HookedModel, sae: SAE) -> None:
    """The SAE's hook point exists in the model and has the SAE's input width."""
    hook = sae.cfg.hook_name
    if not hook:
        raise SaescopeError(
            "the SAE's cfg.json names no hook point (hook_name); analysis needs one."
        )
    model.check_hooks([hook])
    width = model.hook_points()[hook]
    if width != sae.d_in:
        raise SaescopeError(
            f"d_in: the SAE reads {sae.d_in}-wide inputs but hook point {hook} of {model.name} is {width} wide; "
            f"use the model this SAE was trained on (--model) or an SAE with d_in={width}."
        )


def accumulators_for(sae: SAE, cfg: AnalysisConfig) -> FeatureAccumulators:
    return FeatureAccumulators(
        sae.d_sae, cfg.n_exact_top, cfg.per_interval + 2, cfg.cofiring_stride, cfg.seed
    )


# --- the streaming pass -------------------------------------------------------------------


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
    """Accumulate contexts [start, stop) (default: all cfg.n_contexts) into acc; with `checkpoint`,
    save the accumulators there every cfg.checkpoint_every tokens (atomically). Contexts the spool
    accepts run through the whole model and their activations go into it; the others stop at the hook."""
    acc = acc or accumulators_for(sae, cfg)
    stop = cfg.n_contexts if stop is None else min(stop, cfg.n_contexts)
    C = cfg.context_length
    first = 0 if cfg.include_bos or not cfg.corpus.prepend_bos else 1  # BOS positions left out
    positions = torch.arange(first, C)
    hook = sae.cfg.hook_name
    bar = tqdm(
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
                tokens.to(model.device), spool.hooks if spooled else [hook], stop_early=True
            )
            if spooled:
                spool.append({name: acts[:spooled] for name, acts in cache.items()})
            x = cache[hook][:, first:]
            rows, features, values = sparse_codes(sae, x.reshape(-1, sae.d_in))
            token_index = ((context + torch.arange(len(tokens)))[:, None] * C + positions).reshape(
                -1
            )
            acc.update(features, token_index[rows], values, seen=token_index)
            context += len(tokens)
            since_checkpoint += tokens.numel()
            bar.update(tokens.numel())
            if (
                checkpoint is not None
                and since_checkpoint >= cfg.checkpoint_every
                and context < stop
            ):
                save_checkpoint(checkpoint, acc, context, cfg, sae, spool)
                since_checkpoint = 0
            if context >= stop:
                break
    bar.close()
    if checkpoint is not None:
        save_checkpoint(checkpoint, acc, context, cfg, sae, spool)
    return acc


def sae_fingerprint(sae: SAE) -> str:
    """A short hash of the SAE's weights: a checkpoint resumes only for the same SAE."""
    digest = hashlib.sha256()
    for tensor in (sae.W_enc, sae.W_dec, sae.b_dec):
        digest.update(tensor.detach().float().cpu().numpy().tobytes()[: 1 << 22])
    return digest.hexdigest()[:16]


def save_checkpoint(
    path: Path,
    acc: FeatureAccumulators,
    contexts_done: int,
    cfg: AnalysisConfig,
    sae: SAE,
    spool: ActivationSpool | None = None,
) -> None:
    """One file (tensors + metadata), written under a temporary name and renamed; the spool's
    contexts are on disk first (a resumed pass trusts the spool up to contexts_done)."""
    import json

    if spool is not None:
        spool.sync()

    meta = {
        "contexts_done": str(contexts_done),
        "key": json.dumps(cfg.accumulator_key(), sort_keys=True, default=str),
        "sae": sae_fingerprint(sae),
    }
    save_tensors(path, acc.state_dict(), metadata=meta)


def load_checkpoint(
    path: Path, cfg: AnalysisConfig, sae: SAE
) -> tuple[FeatureAccumulators, int] | None:
    """(accumulators, contexts done) from a checkpoint of this SAE and config; None if there is none."""
    import json

    if not path.exists():
        return None
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            state = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except Exception as err:  # noqa: BLE001 (any damage: say which file)
        raise SaescopeError(
            f"{path}: the analysis checkpoint is damaged ({err}); delete it to start again."
        ) from None
    if meta.get("sae") != sae_fingerprint(sae) or meta.get("key") != json.dumps(
        cfg.accumulator_key(), sort_keys=True, default=str
    ):
        raise SaescopeError(
            f"{path} is a checkpoint of another analysis (other SAE, corpus, token count or settings); "
            "delete it, or write this analysis elsewhere (--out)."
        )
    acc = accumulators_for(sae, cfg)
    acc.load_state_dict(state)
    return acc, int(meta["contexts_done"])


def remove_checkpoint(checkpoint: Path) -> None:
    """The checkpoint and the spool beside it: once the result is safely stored."""
    spool_path(checkpoint).unlink(missing_ok=True)
    checkpoint.unlink(missing_ok=True)


def open_spool(
    model: HookedModel, sae: SAE, cfg: AnalysisConfig, checkpoint: Path | None
) -> ActivationSpool | None:
    """The spool of this analysis (beside its checkpoint, or a temporary file); None with spool_gib 0."""
    if not cfg.spool_gib:
        return None
    hooks = [sae.cfg.hook_name, final_residual_hook(model)]
    path = spool_path(checkpoint) if checkpoint is not None else None
    return ActivationSpool(path, model, hooks, cfg.context_length, int(cfg.spool_gib * 2**30))


# --- results ----------------------------------------------------------------------------------


def finish_analysis(
    model: HookedModel,
    sae: SAE,
    cfg: AnalysisConfig,
    acc: FeatureAccumulators,
    sae_id: str | None = None,
    source: str | None = None,
    progress: bool = True,
    stream_examples: bool = False,
    spool: ActivationSpool | None = None,
) -> SAEAnalysis:
    """Feature tables from the accumulators, and the examples from one short pass: run here into a
    list, or with stream_examples as the result's examples are read (an ExampleStream). Contexts in
    the spool are read from it instead of running the model."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    features = feature_tables(model, sae, cfg, acc)
    timings["tables_s"] = time.perf_counter() - start
    start = time.perf_counter()
    directions = dirs.residual_directions(model, sae)
    logits, kept = dirs.logit_tables(
        model, directions, cfg.n_logits, cfg.n_hist_bins, logit_table_budget()
    )
    features.logit_top_ids, features.logit_top_values = logits["top_ids"], logits["top_values"]
    features.logit_bottom_ids, features.logit_bottom_values = (
        logits["bottom_ids"],
        logits["bottom_values"],
    )
    features.logit_hist_counts, features.logit_hist_range = logits["hist"], logits["range"]
    timings["logits_s"] = time.perf_counter() - start
    builder = ExampleBuilder(model, sae, cfg, directions.float(), kept, spool)
    batches = builder.build(wanted_examples(cfg, acc), progress=progress)
    examples = ExampleStream(timed(batches, timings, "examples_s"))
    density = features.density
    return SAEAnalysis(
        sae_id=sae_id or default_sae_id(sae),
        sae_info=sae_info(sae, cfg, source, timings),
        n_tokens=acc.n_tokens,
        corpus=describe_corpus(cfg.corpus),
        features=features,
        examples=examples if stream_examples else list(examples),
        evals={
            "l0": float(acc.count.sum()) / max(acc.n_tokens, 1),
            "dead_fraction": float((density == 0).mean()),
            "dense_fraction": float((density > 0.1).mean()),
        },
        vocab=vocab_of(model.tokenizer, model.d_vocab),
    )


def feature_tables(
    model: HookedModel, sae: SAE, cfg: AnalysisConfig, acc: FeatureAccumulators
) -> FeatureTables:
    n = max(acc.n_tokens, 1)
    count = acc.count.numpy()
    density = count / n
    mean = np.where(count > 0, acc.sum.numpy() / np.maximum(count, 1), 0.0)
    neighbour_ids, neighbour_cos = dirs.nearest_by_decoder(
        dirs.residual_directions(model, sae).float(), cfg.n_neighbours
    )
    cofiring_ids, cofiring_corr = tables.cofiring(acc, cfg.n_neighbours)
    neurons = dirs.aligned_neurons(sae, cfg.n_neurons) if cfg.n_neurons else None
    with np.errstate(divide="ignore"):
        log10_density = np.where(density > 0, np.log10(np.maximum(density, 1e-300)), -np.inf)
    return FeatureTables(
        density=density,
        max_act=acc.max.numpy().astype(np.float64),
        mean_act=mean,
        act_hist_counts=tables.activation_histogram(acc, cfg.n_hist_bins),
        quantile_levels=tables.QUANTILE_LEVELS.copy(),
        quantile_values=tables.quantile_table(acc),
        logit_top_ids=np.zeros(0),
        logit_top_values=np.zeros(0),
        logit_bottom_ids=np.zeros(0),
        logit_bottom_values=np.zeros(0),
        logit_hist_counts=np.zeros(0),
        logit_hist_range=np.zeros(0),
        neighbour_ids=neighbour_ids,
        neighbour_cos=neighbour_cos,
        cofiring_ids=cofiring_ids,
        cofiring_corr=cofiring_corr,
        neuron_ids=None if neurons is None else neurons[0],
        neuron_weights=None if neurons is None else neurons[1],
        # log10 density: NaN for dead features (the store keeps no row for them)
        scores={"log10_density": np.where(np.isfinite(log10_density), log10_density, np.nan)},
    )


def wanted_examples(cfg: AnalysisConfig, acc: FeatureAccumulators) -> Wanted:
    """The top-k and interval samples of every feature, as (feature, token) positions."""
    ids = acc.top_ids[:, : cfg.top_k]
    f, rank = torch.nonzero(ids >= 0, as_tuple=True)
    top = Wanted(
        f,
        torch.full_like(f, EXAMPLE_KINDS.index("top")),
        rank,
        torch.full_like(f, -1),
        ids[f, rank],
        acc.top_vals[f, rank],
    )
    f, interval, rank, token, value = tables.interval_samples(
        acc, cfg.quantile_intervals, cfg.per_interval
    )
    # rank is the order within the kind (results.Example): unique across intervals
    quantile = Wanted(
        f,
        torch.full_like(f, EXAMPLE_KINDS.index("quantile")),
        interval * cfg.per_interval + rank,
        interval,
        token,
        value,
    )
    return Wanted.cat([top, quantile])


def timed(
    batches: Iterator[list[Example]], timings: dict[str, float], key: str
) -> Iterator[list[Example]]:
    """The batches as they come, with the time spent making them (not the reader's) in timings[key]."""
    timings[key] = 0.0
    while True:
        start = time.perf_counter()
        batch = next(batches, None)
        timings[key] += time.perf_counter() - start
        if batch is None:
            return
        yield batch


def default_sae_id(sae: SAE) -> str:
    model = sae.cfg.model_name or "model"
    return f"{model}/{sae.cfg.hook_name}/{sae.cfg.architecture}-{sae.d_sae}"


def sae_info(
    sae: SAE, cfg: AnalysisConfig, source: str | None, timings: dict[str, float]
) -> dict[str, Any]:
    return {
        "architecture": sae.cfg.architecture,
        "d_in": sae.d_in,
        "d_sae": sae.d_sae,
        "k": sae.cfg.k,
        "hook_point": sae.cfg.hook_name,
        "model": sae.cfg.model_name,
        "source": source,
        # published SAEs (saescope.sae.pretrained) and SAELens files: dashboards link to Neuronpedia
        "neuronpedia_id": (sae.cfg.extra.get("metadata") or {}).get("neuronpedia_id"),
        "cfg": sae.cfg.to_dict(),
        "analysis": {
            **{k: v for k, v in cfg.to_dict().items() if k != "corpus"},
            "loss_effects": "direct path (final norm recomputed); real ablation for ablate_features",
            "quantile_intervals_kind": "equal-width activation intervals over (0, max_act], 0 = lowest",
            "timings": timings,
        },
    }


def vocab_of(tokenizer: Any, d_vocab: int) -> list[str] | None:
    if tokenizer is None:
        return None
    size = min(d_vocab, len(tokenizer))
    vocab = tokenizer.batch_decode([[i] for i in range(size)])
    return vocab + [f"<{i}>" for i in range(size, d_vocab)]


# --- the whole job --------------------------------------------------------------------------


def prepare_analysis(
    sae: SAE | str | Path,
    cfg: AnalysisConfig | None,
    model: HookedModel | str | None,
) -> tuple[SAE, AnalysisConfig, HookedModel, str | None]:
    """The SAE loaded (if given by path), the config validated against it, its model loaded,
    both on one device: (sae, cfg, model, source path or None)."""
    from saescope.models import load_model
    from saescope.sae import load_sae

    cfg = cfg or AnalysisConfig()
    source = None
    if not isinstance(sae, SAE):
        source = str(sae)
        sae = load_sae(find_sae_dir(sae))
    cfg.validate(sae.d_sae)
    if model is None or isinstance(model, str):
        name = model or sae.cfg.model_name
        if not name:
            raise SaescopeError(
                "the SAE's cfg.json names no model (model_name); pass one (--model)."
            )
        model = load_model(name)
    check_sae_fits(model, sae)
    return sae.to(model.device).eval(), cfg, model, source


def analyze(
    sae: SAE | str | Path,
    cfg: AnalysisConfig | None = None,
    model: HookedModel | str | None = None,
    checkpoint: str | Path | None = None,
    sae_id: str | None = None,
    progress: bool = True,
    stream_examples: bool = False,
) -> SAEAnalysis:
    """Analyse every feature of an SAE (a loaded SAE, an SAE path, or a run directory).

    With `checkpoint` (a file path) the accumulators are saved there as the pass goes; running
    again with the same arguments resumes from it. The caller deletes it once the result is stored.
    With `stream_examples` the examples are an ExampleStream, made as they are read once (by
    FeatureStore.write_analysis or save_analysis): no list of every example is held."""
    sae, cfg, model, source = prepare_analysis(sae, cfg, model)
    acc, start = None, 0
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None:
        resumed = load_checkpoint(checkpoint, cfg, sae)
        if resumed is not None:
            acc, start = resumed
            if progress:
                print(
                    f"resuming the analysis after {start * cfg.context_length:,} tokens ({checkpoint})"
                )
    spool = open_spool(model, sae, cfg, checkpoint)
    if spool is not None:
        spool.resume(start)  # what the checkpoint vouches for (nothing, starting afresh)
    acc = stream_pass(
        model, sae, cfg, acc, start=start, checkpoint=checkpoint, progress=progress, spool=spool
    )
    return finish_analysis(
        model,
        sae,
        cfg,
        acc,
        sae_id=sae_id,
        source=source,
        progress=progress,
        stream_examples=stream_examples,
        spool=spool,
    )
