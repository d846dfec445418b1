"""The results of a streaming pass: the feature tables from the accumulators, the logit tables
from the SAE's directions, and the examples from one short second pass, as an SAEAnalysis.

With stream_examples the example pass runs as result.examples is read (by
FeatureStore.write_analysis or save_analysis), so that memory stays bounded by features x kept
examples and the batch. Contexts in the spool are read from it instead of running the model.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

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
from saescope.analysis.spool import ActivationSpool
from saescope.corpus import describe_corpus
from saescope.models import HookedModel
from saescope.sae import SAE
from saescope.sysinfo import available_memory

MIN_LOGIT_TABLE_BUDGET = 2 * 2**30  # bytes of [d_sae, d_vocab] logit effects kept, at least
# how the results were made, in each result's sae_info
LOSS_EFFECTS_KIND = "direct path (final norm recomputed); real ablation for ablate_features"
QUANTILE_INTERVALS_KIND = "equal-width activation intervals over (0, max_act], 0 = lowest"


def logit_table_budget() -> int:
    """Bytes of [d_sae, d_vocab] float32 logit effects to keep for the loss effects: a quarter of
    the memory available now, at least MIN_LOGIT_TABLE_BUDGET (also where that is unknown).

    The rows of features past it are recomputed through the unembedding for each chunk of
    cells: for a 16k SAE on SmolLM2 (3 GiB of table) recomputing all of them took 167 s of a
    329 s analysis, against 12 s for the table once."""
    return max(MIN_LOGIT_TABLE_BUDGET, (available_memory() or 0) // 4)


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
            "dead_window_tokens": acc.n_tokens,  # dead: fired on none of these tokens
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
    """The batches as they come; the time spent making them (not reading them) in timings[key]."""
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
            "loss_effects": LOSS_EFFECTS_KIND,
            "quantile_intervals_kind": QUANTILE_INTERVALS_KIND,
            "timings": timings,
        },
    }


def vocab_of(tokenizer: Any, d_vocab: int) -> list[str] | None:
    if tokenizer is None:
        return None
    size = min(d_vocab, len(tokenizer))
    vocab = tokenizer.batch_decode([[i] for i in range(size)])
    return vocab + [f"<{i}>" for i in range(size, d_vocab)]
