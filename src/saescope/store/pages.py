"""Shape stored rows into the JSON-able dicts the dashboards and the viewer render.

Token ids come with their text (from the stored vocabulary), so a page needs no tokenizer.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from saescope.analysis.results import EXAMPLE_KINDS
from saescope.store.arrays import unpack_arrays
from saescope.store.rows import TokenTexts


def feature_page(
    sae: Any,
    row: Any,
    example_rows: list[Any],
    scores: dict[str, float],
    vocab: TokenTexts,
    explanations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """explanations: the feature's stored explanations and labels, current first (as
    FeatureStore.explanations gives them)."""
    arrays = unpack_arrays(row.data)
    examples: dict[str, list[dict[str, Any]]] = {kind: [] for kind in EXAMPLE_KINDS}
    for ex in example_rows:
        examples[ex.kind].append(example_dict(ex, vocab))
    for group in examples.values():  # quantile examples: interval by interval
        group.sort(key=lambda ex: (ex["interval"], ex["rank"]))
    return {
        "sae_id": row.sae_id,
        "feature": row.feature,
        "density": row.density,
        "max_act": row.max_act,
        "mean_act": row.mean_act,
        "explanation": row.explanation,
        "label": row.label,
        "explanations": explanations or [],
        "scores": scores,
        "act_hist": {
            "counts": arrays["act_hist_counts"].tolist(),
            "bin_edges": np.linspace(0.0, row.max_act, len(arrays["act_hist_counts"]) + 1).tolist(),
        },
        "quantiles": {
            "levels": json.loads(sae.quantile_levels),
            "values": arrays["quantile_values"].tolist(),
        },
        "logits": {
            "top": _logit_table(arrays["logit_top_ids"], arrays["logit_top_values"], vocab),
            "bottom": _logit_table(
                arrays["logit_bottom_ids"], arrays["logit_bottom_values"], vocab
            ),
            "hist": {
                "counts": arrays["logit_hist_counts"].tolist(),
                "range": arrays["logit_hist_range"].tolist(),
            },
        },
        "neighbours": _pairs(arrays["neighbour_ids"], arrays["neighbour_cos"], "feature", "cos"),
        "cofiring": _pairs(arrays["cofiring_ids"], arrays["cofiring_corr"], "feature", "corr"),
        "neurons": (
            _pairs(arrays["neuron_ids"], arrays["neuron_weights"], "neuron", "weight")
            if "neuron_ids" in arrays
            else None
        ),
        "examples": examples,
    }


def example_dict(row: Any, vocab: TokenTexts) -> dict[str, Any]:
    arrays = unpack_arrays(row.data)
    lists = {name: array.tolist() for name, array in arrays.items()}
    out = {
        "rank": row.rank,
        "interval": row.interval,
        "center": row.center,
        "max_act": row.max_act,
        "context_index": row.context_index,
        "position": row.position,
        "token_ids": lists["token_ids"],
        "tokens": vocab(arrays["token_ids"]),
        "acts": lists["acts"],
        "loss_effects": lists.get("loss_effects"),
    }
    for side in ("top_boosted", "top_suppressed"):
        out[side] = lists.get(side)
        out[f"{side}_tokens"] = vocab(arrays[side]) if side in arrays else None
        out[f"{side}_values"] = lists.get(f"{side}_values")
    return out


def _logit_table(ids: np.ndarray, values: np.ndarray, vocab: TokenTexts) -> list[dict[str, Any]]:
    return [
        {"token_id": i, "token": t, "value": v}
        for i, t, v in zip(ids.tolist(), vocab(ids), values.tolist(), strict=True)
    ]


def _pairs(
    ids: np.ndarray, values: np.ndarray, id_name: str, value_name: str
) -> list[dict[str, Any]]:
    return [{id_name: i, value_name: v} for i, v in zip(ids.tolist(), values.tolist(), strict=True)]


def density_histogram(densities: np.ndarray, n_bins: int = 50) -> dict[str, Any]:
    """Histogram of log10 density over the features that fired; dead ones are counted apart."""
    live = densities[densities > 0]
    if len(live) == 0:
        return {
            "log10_edges": [],
            "counts": [],
            "n_dead": int(len(densities)),
            "n_features": int(len(densities)),
        }
    log_density = np.log10(live)
    low = float(np.floor(log_density.min()))
    counts, edges = np.histogram(log_density, bins=n_bins, range=(low, 0.0))
    return {
        "log10_edges": edges.tolist(),
        "counts": counts.tolist(),
        "n_dead": int(len(densities) - len(live)),
        "n_features": int(len(densities)),
    }
