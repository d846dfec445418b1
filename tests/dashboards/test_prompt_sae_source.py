"""The prompt view finds the SAE when the analysis recorded a run directory as its source
(what `saescope analyze RUN` records)."""

from __future__ import annotations

from saescope.dashboards.dashboard import _sae
from saescope.sae.with_model import load_sae_with_model


def test_a_run_directory_source_loads_its_sae(real_run):
    run_dir, sae_id = real_run
    summary = {"sae_id": sae_id, "info": {"source": str(run_dir)}}
    found = _sae(None, summary, run_dir / "features.db")
    loaded = load_sae_with_model(found)  # as the prompt view does
    assert loaded.hook == sae_id.split("/")[1] and loaded.sae.d_sae > 0
