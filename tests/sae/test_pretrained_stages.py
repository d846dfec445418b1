"""Every stage takes a published SAE's name where it takes a path: analysis, evals, the prompt
dashboard, the viewer's source; and the Neuronpedia id reaches the dashboards' data.

The SAE is a real one on SmolLM2's layer-3 residual stream (tests/sae_builders.py), saved natively
(SAELens's layout) into a hub cache this test builds, at the folder of a registry entry of a
SAELens-format release; the stages run offline, on the bundled model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from saescope.analysis import AnalysisConfig, analyze
from saescope.corpus import CorpusConfig
from saescope.dashboards import write_dashboard
from saescope.dashboards.dashboard import prompt_dashboard_data
from saescope.dashboards.data import sae_data
from saescope.evals import evaluate
from saescope.sae import load_sae, save_sae
from saescope.sae.pretrained import resolve_pretrained
from saescope.server.sources import open_source
from saescope.store import open_store
from tests.sae.test_hub import build_hub_cache
from tests.sae_builders import topk_sae_from_activations

NAME = "gpt2-small-res-jb/blocks.3.hook_resid_pre"
HOOK = "blocks.3.hook_resid_post"


@pytest.fixture(scope="module")
def sae_folder(smollm2, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sae") / "topk"
    save_sae(topk_sae_from_activations(smollm2, HOOK, 64, 8, corpus_seed=1000), out)
    return out


@pytest.fixture
def hub(sae_folder, tmp_path, monkeypatch) -> Path:
    entry = resolve_pretrained(NAME)
    files = {f"{entry.path}/{p.name}": p for p in sae_folder.iterdir() if p.is_file()}
    build_hub_cache(tmp_path / "hub", entry.repo_id, files)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # nothing may be written next to a name taken for a folder
    return tmp_path / "hub"


def small_analysis() -> AnalysisConfig:
    return AnalysisConfig(
        corpus=CorpusConfig(context_length=32),
        n_tokens=32 * 8,
        batch_size=8,
        top_k=5,
        n_exact_top=8,
        quantile_intervals=4,
        per_interval=2,
        n_inactive=2,
        window=(4, 2),
    )


def test_analysis_store_dashboard_and_viewer_take_the_name(hub, smollm2, tmp_path, browser):
    entry = resolve_pretrained(NAME)
    assert entry.neuronpedia
    result = analyze(NAME, small_analysis(), model=smollm2, progress=False)
    assert result.sae_info["source"] == NAME
    assert result.sae_info["neuronpedia_id"] == entry.neuronpedia
    assert result.sae_info["model"] == entry.model == "openai-community/gpt2"
    with open_store(tmp_path / "features.db") as store:
        store.write_analysis(result)
        sae_id = store.list_saes()[0]["sae_id"]
        summary = store.sae_summary(sae_id)
        # the dashboards' and the viewer's SAE line carries the Neuronpedia id for the link
        assert sae_data(summary)["neuronpedia_id"] == entry.neuronpedia
        # the prompt dashboard loads the SAE from the recorded name
        data = prompt_dashboard_data(store, sae_id, "The cat sat on the mat", model=smollm2)
        assert data["sae"]["neuronpedia_id"] == entry.neuronpedia
        assert data["prompt"]["tokens"]
        html = write_dashboard(store, sae_id, [0, 1], tmp_path / "features.html")
    # the feature panel's header links to the feature's page on Neuronpedia (real Chromium)
    page = browser.new_page()
    try:
        page.goto(html.as_uri())
        link = page.locator("a.sc-neuronpedia")
        link.wait_for()
        shown = int(page.locator("#sc-select").input_value())
        assert (
            link.get_attribute("href") == f"https://www.neuronpedia.org/{entry.neuronpedia}/{shown}"
        )
    finally:
        page.close()
    # the viewer finds the SAE's weights by the recorded name
    source = open_source(tmp_path / "features.db")
    assert str(source.sae_dirs[sae_id]) == NAME
    assert torch.equal(load_sae(source.sae_dirs[sae_id]).W_dec, load_sae(NAME).W_dec)
    assert not (tmp_path / NAME.split("/")[0]).exists()


def test_eval_takes_the_name_and_writes_nothing_into_the_cache(hub, smollm2, tmp_path):
    results = evaluate(NAME, model=smollm2, n_tokens=256, batch_contexts=4, progress=False)
    assert results["sae"] == NAME and results["hook"] == HOOK
    assert 0 < results["l0"] <= 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub"]
    assert not list(hub.rglob("eval.json"))
