"""The Neuronpedia export builds its folder from strings in the store: they never nest or escape."""

from __future__ import annotations

from saescope.store.export import export_neuronpedia
from tests.store.store_data import make_analysis


def test_model_ids_with_slashes_or_dots_stay_one_folder_inside_out_dir(store, tmp_path):
    analysis = make_analysis()
    store.write_analysis(analysis)
    out = tmp_path / "np"
    for model_id in ["google/gemma-2-2b", "../../escaped", "/abs/model"]:
        folder = export_neuronpedia(store, analysis.sae_id, out, model_id=model_id)
        assert folder.parent == out and (folder / "run_settings.json").exists()
    assert not (tmp_path / "escaped").exists() and sorted(p.name for p in out.iterdir()) == [
        "abs-model_topk-64_blocks.6.hook_resid_post_64",
        "escaped_topk-64_blocks.6.hook_resid_post_64",
        "google-gemma-2-2b_topk-64_blocks.6.hook_resid_post_64",
    ]
