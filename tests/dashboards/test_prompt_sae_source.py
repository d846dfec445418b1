"""The prompt view finds the SAE when the analysis recorded a run directory as its source
(what `saescope analyze RUN` records)."""

from __future__ import annotations

from saescope.dashboards.dashboard import _sae


def test_a_run_directory_source_loads_its_sae(real_run):
    run_dir, sae_id = real_run
    summary = {"sae_id": sae_id, "info": {"source": str(run_dir)}}
    sae = _sae(None, summary, run_dir / "features.db")
    assert sae.cfg.hook_name and sae.d_sae > 0
