"""Export stored features: our JSON (one feature page, or an SAE with all its pages), and
the batch files SAEDashboard's Neuronpedia runner writes for a Neuronpedia upload.

Neuronpedia layout (sae-dashboard 0.8.0, `NeuronpediaRunner` + `NeuronpediaConverter`):
OUT/<model_id>_<sae_set>_<hook_point>_<d_sae>[_<suffix>]/ holding run_settings.json,
skipped_indexes.json (features too sparse to show) and batch-<i>.json, the other features
split by numpy.array_split into ceil(n / features_per_batch) near-equal batches. Each batch
is {model_id, layer, sae_set, sae_id_suffix, features: [...]}, with the runner's field names
per feature and per activation; values rounded to 3 decimals as the runner does.

A feature with a current explanation or label also gets "explanations": Neuronpedia's
Explanation objects (its webapp's Prisma model: modelId, layer as "<layer>-<sae_set>" source
id, index as a string, description, typeName, explanationModelName, notes, createdAt, and
scores as ExplanationScore objects: value, explanationScoreTypeName,
explanationScoreModelName, jsonDetails). The runner writes no such field: features without
one keep the runner's exact layout.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from saescope.fileio import atomic_write, path_component, write_json
from saescope.store.store import FeatureStore

DEFAULT_FEATURES_PER_BATCH = 128  # NeuronpediaRunnerConfig.n_features_at_a_time
DEFAULT_LOG_SPARSITY = -6  # NeuronpediaRunnerConfig.sparsity_threshold
# Neuronpedia's names for the explainer and scorer methods ours follow; a method it has no
# type for keeps saescope's own name (a hand-written explanation has no type).
NP_EXPLANATION_TYPES = {
    "delphi": "eleuther_acts_top20",
    "oai": "oai_token-act-pair",
    "label": "np_max-act",
}
NP_SCORE_TYPES = {"detection": "eleuther_recall", "fuzzing": "eleuther_fuzz"}


def export_json(
    store: FeatureStore, sae_id: str, out: str | Path, feature: int | None = None
) -> Path:
    """One feature page, or {"sae": summary, "features": [every page]} streamed to `out`."""
    out = Path(out)
    if feature is not None:
        write_json(out, store.feature(sae_id, feature))
        return out
    summary = store.sae_summary(sae_id)

    def write(tmp: Path) -> None:
        with open(tmp, "w") as f:
            f.write('{"sae": ' + json.dumps(summary) + ', "features": [\n')
            for i, page in enumerate(store.iter_features(sae_id)):
                f.write((",\n" if i else "") + json.dumps(page))
            f.write("\n]}\n")

    atomic_write(out, write)
    return out


def export_neuronpedia(
    store: FeatureStore,
    sae_id: str,
    out_dir: str | Path,
    model_id: str | None = None,
    sae_set: str | None = None,
    sae_id_suffix: str | None = None,
    features_per_batch: int = DEFAULT_FEATURES_PER_BATCH,
    log_sparsity: float = DEFAULT_LOG_SPARSITY,
) -> Path:
    """Write an SAE's features as SAEDashboard's Neuronpedia runner does; returns the folder.
    Features with log10(density) below `log_sparsity` (and dead ones) go to skipped_indexes."""
    summary = store.sae_summary(sae_id)
    info, corpus = summary["info"], summary["corpus"]
    hook_point = info.get("hook_point") or "hook"
    model_id = model_id or info.get("model") or "model"
    sae_set = sae_set or re.sub(r"[^\w.-]+", "-", sae_id.rsplit("/", 1)[-1])
    layer = _layer(hook_point)
    name = f"{model_id}_{sae_set}_{hook_point}_{summary['d_sae']}" + (
        f"_{sae_id_suffix}" if sae_id_suffix else ""
    )
    folder = Path(out_dir) / path_component(name)  # model ids hold "/" and stores are data
    folder.mkdir(parents=True, exist_ok=True)

    kept, skipped = _split_by_sparsity(store, sae_id, log_sparsity)
    settings = {
        "sae_set": sae_set,
        "sae_path": sae_id,
        "outputs_dir": str(folder),
        "np_sae_id_suffix": sae_id_suffix,
        "sparsity_threshold": log_sparsity,
        "huggingface_dataset_path": str(corpus.get("source", "")),
        "n_prompts_total": int(corpus.get("n_contexts", 0)),
        "n_tokens_in_prompt": int(corpus.get("context_length", 0)),
        "n_features_at_a_time": features_per_batch,
        "model_id": model_id,
        "layer": layer,
        "exported_by": "saescope store export --neuronpedia",
    }
    write_json(folder / "run_settings.json", settings)
    write_json(
        folder / "skipped_indexes.json",
        {
            "model_id": model_id,
            "layer": str(layer),
            "sae_set": sae_set,
            "log_sparsity": log_sparsity,
            "skipped_indexes": skipped,
        },
    )
    if not kept:
        return folder
    batches = np.array_split(np.array(kept), math.ceil(len(kept) / features_per_batch))
    for i, batch in enumerate(batches):
        pages = store.iter_features(sae_id, batch.tolist())
        write_json(
            folder / f"batch-{i}.json",
            {
                "model_id": model_id,
                "layer": layer,
                "sae_set": sae_set,
                "sae_id_suffix": sae_id_suffix,
                "features": [np_feature(page, settings) for page in pages],
            },
        )
    return folder


def np_feature(page: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """A feature page in the shape of SAEDashboard's NeuronpediaDashboardFeature.to_dict()."""
    act_counts = page["act_hist"]["counts"]
    edges = np.asarray(page["act_hist"]["bin_edges"])
    logit_counts = page["logits"]["hist"]["counts"]
    low, high = page["logits"]["hist"]["range"]
    logit_edges = np.linspace(low, high, len(logit_counts) + 1)
    neurons = page["neurons"] or []
    return {
        "feature_index": page["feature"],
        "neuron_alignment_indices": [n["neuron"] for n in neurons],
        "neuron_alignment_values": _round([n["weight"] for n in neurons]),
        "neuron_alignment_l1": [],
        "correlated_neurons_indices": [],
        "correlated_neurons_l1": [],
        "correlated_neurons_pearson": [],
        "correlated_features_indices": [c["feature"] for c in page["cofiring"]],
        "correlated_features_l1": [],
        "correlated_features_pearson": _round([c["corr"] for c in page["cofiring"]]),
        "neg_str": [t["token"] for t in page["logits"]["bottom"]],
        "neg_values": _round([t["value"] for t in page["logits"]["bottom"]]),
        "pos_str": [t["token"] for t in page["logits"]["top"]],
        "pos_values": _round([t["value"] for t in page["logits"]["top"]]),
        "frac_nonzero": page["density"],
        "freq_hist_data_bar_values": _round((edges[:-1] + edges[1:]) / 2),
        "freq_hist_data_bar_heights": _round(act_counts),
        "logits_hist_data_bar_heights": _round(logit_counts),
        "logits_hist_data_bar_values": _round((logit_edges[:-1] + logit_edges[1:]) / 2),
        "n_prompts_total": settings["n_prompts_total"],
        "n_tokens_in_prompt": settings["n_tokens_in_prompt"],
        "dataset": settings["huggingface_dataset_path"],
        "decoder_weights_dist": [],
        "activations": list(_np_activations(page)),
        "vector": [],
        **(
            {"explanations": explanations}
            if (explanations := np_explanations(page, settings))
            else {}
        ),
    }


def np_explanations(page: dict[str, Any], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The feature's current explanation and label as Neuronpedia Explanation objects."""
    source = f"{settings['layer']}-{settings['sae_set']}"
    return [
        {
            "modelId": settings["model_id"],
            "layer": source,
            "index": str(page["feature"]),
            "description": e["text"],
            "typeName": _np_type(e),
            "explanationModelName": e["explainer"]["model"] or None,
            "notes": _np_notes(e),
            "createdAt": e["created_at"],
            "scores": [
                {
                    "value": score["value"],
                    "explanationScoreTypeName": NP_SCORE_TYPES.get(
                        score["scorer"], score["scorer"]
                    ),
                    "explanationScoreModelName": score.get("model") or None,
                    "jsonDetails": json.dumps(score["metrics"], sort_keys=True),
                    "createdAt": score["created_at"],
                }
                for score in e["scores"]
                if score["value"] is not None  # Neuronpedia's value is a number
            ],
        }
        for e in page.get("explanations", [])
        if e["current"]
    ]


def _np_type(explanation: dict[str, Any]) -> str | None:
    explainer = explanation["explainer"]
    if explainer["backend"] == "manual":
        return None
    return NP_EXPLANATION_TYPES.get(explainer["prompt_format"], explainer["prompt_format"])


def _np_notes(explanation: dict[str, Any]) -> str:
    explainer = explanation["explainer"]
    if explainer["backend"] == "manual":
        return f"saescope {explanation['kind']} {explanation['id']}, set by hand"
    return (
        f"saescope {explanation['kind']} {explanation['id']}: prompt format "
        f"{explainer['prompt_format']} v{explainer['prompt_version']}, "
        f"{explainer['backend']} backend"
    )


def _np_activations(page: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Top examples first (bin_min -1, bin_max the feature's max), then the quantile
    intervals from the highest down, as the runner orders its sequence groups."""
    for ex in page["examples"]["top"]:
        yield _np_activation(ex, -1, page["max_act"], -1)
    intervals: dict[int, list[dict[str, Any]]] = {}
    for ex in page["examples"]["quantile"]:
        intervals.setdefault(ex["interval"], []).append(ex)
    for interval in sorted(intervals, reverse=True):
        group = intervals[interval]
        low, high = min(ex["max_act"] for ex in group), max(ex["max_act"] for ex in group)
        contains = page["density"] * _hist_fraction(page["act_hist"], low, high)
        for ex in group:
            yield _np_activation(ex, low, high, contains)


def _np_activation(
    ex: dict[str, Any], bin_min: float, bin_max: float, bin_contains: float
) -> dict[str, Any]:
    return {
        "bin_min": round(bin_min, 3),
        "bin_max": round(bin_max, 3),
        "bin_contains": bin_contains,
        "tokens": ex["tokens"],
        "values": _round(ex["acts"]),
        "qualifying_token_index": ex["center"],
    }


def _hist_fraction(hist: dict[str, Any], low: float, high: float) -> float:
    """Share of a feature's non-zero activations in [low, high], from its histogram."""
    counts = np.asarray(hist["counts"], dtype=np.float64)
    edges = np.asarray(hist["bin_edges"])
    if counts.sum() == 0:
        return 0.0
    centres = (edges[:-1] + edges[1:]) / 2
    return float(counts[(centres >= low) & (centres <= high)].sum() / counts.sum())


def _split_by_sparsity(
    store: FeatureStore, sae_id: str, log_sparsity: float
) -> tuple[list[int], list[int]]:
    density = store.densities(sae_id)
    keep = (density > 0) & (density >= 10.0**log_sparsity)
    return np.flatnonzero(keep).tolist(), np.flatnonzero(~keep).tolist()


def _layer(hook_point: str) -> int:
    match = re.search(r"(?:blocks|layers)\.(\d+)", hook_point)
    return int(match.group(1)) if match else 0


def _round(values: Any) -> list[float]:
    return np.round(np.asarray(values, dtype=np.float64), 3).tolist()
