"""Exports: our JSON (one feature, a whole SAE) and the Neuronpedia upload layout that
SAEDashboard's Neuronpedia runner writes (field names from sae-dashboard 0.8.0:
neuronpedia_dashboard.py's to_dict() methods, neuronpedia_runner.py's file layout)."""

from __future__ import annotations

import json
import math

import numpy as np

from saescope.store.export import export_json, export_neuronpedia
from tests.store.interp_data import (
    ANSWERS,
    LABELS,
    TRUTH,
    classification,
    explained,
)
from tests.store.store_data import PARIS, VOCAB, make_analysis

NP_BATCH_KEYS = {"model_id", "layer", "sae_set", "sae_id_suffix", "features"}
NP_FEATURE_KEYS = {
    "feature_index",
    "neuron_alignment_indices",
    "neuron_alignment_values",
    "neuron_alignment_l1",
    "correlated_neurons_indices",
    "correlated_neurons_l1",
    "correlated_neurons_pearson",
    "correlated_features_indices",
    "correlated_features_l1",
    "correlated_features_pearson",
    "neg_str",
    "neg_values",
    "pos_str",
    "pos_values",
    "frac_nonzero",
    "freq_hist_data_bar_values",
    "freq_hist_data_bar_heights",
    "logits_hist_data_bar_heights",
    "logits_hist_data_bar_values",
    "n_prompts_total",
    "n_tokens_in_prompt",
    "dataset",
    "decoder_weights_dist",
    "activations",
    "vector",
}
NP_ACTIVATION_KEYS = {
    "bin_min",
    "bin_max",
    "bin_contains",
    "tokens",
    "values",
    "qualifying_token_index",
}
# Neuronpedia's Explanation and ExplanationScore (apps/webapp/prisma/schema.prisma), the
# fields an export can fill
NP_EXPLANATION_KEYS = {
    "modelId",
    "layer",
    "index",
    "description",
    "typeName",
    "explanationModelName",
    "notes",
    "createdAt",
    "scores",
}
NP_SCORE_KEYS = {
    "value",
    "explanationScoreTypeName",
    "explanationScoreModelName",
    "jsonDetails",
    "createdAt",
}
NP_SKIPPED_KEYS = {"model_id", "layer", "sae_set", "log_sparsity", "skipped_indexes"}


def test_json_export_of_one_feature_and_of_all(store, tmp_path):
    analysis = make_analysis()
    store.write_analysis(analysis)
    one = json.loads(
        export_json(store, analysis.sae_id, tmp_path / "f3.json", feature=3).read_text()
    )
    assert one == json.loads(json.dumps(store.feature(analysis.sae_id, 3)))
    everything = json.loads(export_json(store, analysis.sae_id, tmp_path / "all.json").read_text())
    assert everything["sae"]["sae_id"] == analysis.sae_id
    assert everything["sae"]["evals"] == analysis.evals
    assert [page["feature"] for page in everything["features"]] == list(range(64))
    assert everything["features"][3] == one


def test_neuronpedia_layout_matches_saedashboard(store, tmp_path):
    analysis = make_analysis(neurons=True)
    store.write_analysis(analysis)
    folder = export_neuronpedia(store, analysis.sae_id, tmp_path / "np", features_per_batch=20)
    assert folder.name == "smollm2_topk-64_blocks.6.hook_resid_post_64"
    density = analysis.features.density
    dead = np.flatnonzero(density == 0).tolist()
    kept = 64 - len(dead)
    n_batches = math.ceil(kept / 20)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [
            "run_settings.json",
            "skipped_indexes.json",
            *[f"batch-{i}.json" for i in range(n_batches)],
        ]
    )
    skipped = json.loads((folder / "skipped_indexes.json").read_text())
    assert set(skipped) == NP_SKIPPED_KEYS
    assert skipped["skipped_indexes"] == dead and skipped["layer"] == "6"

    features = []
    sizes = []
    for i in range(n_batches):
        batch = json.loads((folder / f"batch-{i}.json").read_text())
        assert set(batch) == NP_BATCH_KEYS
        assert (batch["model_id"], batch["layer"], batch["sae_set"]) == ("smollm2", 6, "topk-64")
        sizes.append(len(batch["features"]))
        features += batch["features"]
    assert sizes == [
        len(part) for part in np.array_split(np.arange(kept), n_batches)
    ]  # as the runner splits
    assert [f["feature_index"] for f in features] == [f for f in range(64) if f not in dead]

    feature = next(f for f in features if f["feature_index"] == 3)
    assert set(feature) == NP_FEATURE_KEYS
    tables = analysis.features
    assert feature["pos_str"] == [VOCAB[i] for i in tables.logit_top_ids[3]]
    assert (
        feature["neg_values"]
        == np.round(tables.logit_bottom_values[3].astype(np.float64), 3).tolist()
    )
    assert feature["frac_nonzero"] == density[3]
    assert feature["freq_hist_data_bar_heights"] == tables.act_hist_counts[3].astype(float).tolist()
    assert feature["neuron_alignment_indices"] == tables.neuron_ids[3].tolist()
    assert feature["correlated_features_indices"] == tables.cofiring_ids[3].tolist()
    assert feature["n_tokens_in_prompt"] == 128 and feature["dataset"] == "builtin"
    activations = feature["activations"]
    assert all(set(a) == NP_ACTIVATION_KEYS for a in activations)
    n_top = sum(1 for ex in analysis.examples if ex.feature == 3 and ex.kind == "top")
    top = activations[:n_top]
    assert all(a["bin_min"] == -1 and a["bin_contains"] == -1 for a in top)
    assert all(a["tokens"][a["qualifying_token_index"]] == VOCAB[PARIS] for a in top)
    intervals = activations[n_top:]
    assert [a["bin_max"] for a in intervals] == sorted(
        (a["bin_max"] for a in intervals), reverse=True
    )
    assert all(0 <= a["bin_contains"] <= 1 for a in intervals)


def test_neuronpedia_export_carries_current_explanations_and_their_scores(store, tmp_path):
    analysis = make_analysis()
    store.write_analysis(analysis)
    sae_id = analysis.sae_id
    detection = classification("detection", 3, TRUTH, ANSWERS)
    store.write_autointerp_results(
        [
            explained(sae_id, 3, "an older explanation", []),
            explained(
                sae_id,
                3,
                "The city of Paris",
                [detection, classification("fuzzing", 3, TRUTH, TRUTH)],
            ),
            explained(sae_id, 3, "Paris", [], explainer=LABELS),
        ]
    )
    store.set_explanation(sae_id, 5, "London, by hand")
    folder = export_neuronpedia(store, sae_id, tmp_path / "np", features_per_batch=100)
    [batch] = [json.loads(p.read_text()) for p in folder.glob("batch-*.json")]
    by_index = {f["feature_index"]: f for f in batch["features"]}
    assert set(by_index[4]) == NP_FEATURE_KEYS  # unexplained: the runner's layout exactly
    assert set(by_index[3]) == NP_FEATURE_KEYS | {"explanations"}
    explanation, label = sorted(by_index[3]["explanations"], key=lambda e: e["typeName"])
    assert set(explanation) == NP_EXPLANATION_KEYS
    assert (explanation["modelId"], explanation["layer"], explanation["index"]) == (
        "smollm2",
        "6-topk-64",
        "3",
    )
    assert explanation["description"] == "The city of Paris"
    assert explanation["typeName"] == "eleuther_acts_top20"  # delphi's explainer
    assert explanation["explanationModelName"] == "Qwen/Qwen2.5-7B-Instruct"
    assert "prompt format delphi v1" in explanation["notes"]
    scores = {s["explanationScoreTypeName"]: s for s in explanation["scores"]}
    assert set(scores) == {"eleuther_recall", "eleuther_fuzz"}  # detection, fuzzing
    assert all(set(s) == NP_SCORE_KEYS for s in scores.values())
    assert scores["eleuther_recall"]["value"] == detection.value
    assert scores["eleuther_fuzz"]["value"] == 1.0
    assert scores["eleuther_recall"]["explanationScoreModelName"] == "Qwen/Qwen2.5-7B-Instruct"
    assert json.loads(scores["eleuther_recall"]["jsonDetails"])["tp"] == 2
    assert (label["description"], label["typeName"], label["scores"]) == ("Paris", "np_max-act", [])
    [manual] = by_index[5]["explanations"]
    assert (manual["description"], manual["typeName"], manual["explanationModelName"]) == (
        "London, by hand",
        None,
        None,
    )
