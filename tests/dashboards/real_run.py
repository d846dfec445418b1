"""A tiny real run for the dashboard tests: a TopK SAE on SmolLM2's layer-3 residual stream
(tests/sae_builders.py: real activation directions), analysed over a few thousand tokens of the
built-in corpus and written to a SQLite store.
"""

from __future__ import annotations

from pathlib import Path

from tests.sae_builders import topk_sae_from_activations

PROMPT = "The capital of France is Paris, and the capital of Germany is Berlin."

HOOK = "blocks.3.hook_resid_post"
D_SAE = 32
K = 4
N_TOKENS = 1024


def build_sae(model, seed: int = 0):
    return topk_sae_from_activations(
        model, HOOK, D_SAE, K, corpus_seed=2000 + seed, seed=seed
    )  # not the analysed contexts


def make_run(model, run_dir: Path) -> tuple[Path, str]:
    """run_dir/sae (the SAE) and run_dir/features.db (its analysis); returns (run_dir, sae_id)."""
    from saescope.analysis import AnalysisConfig, analyze
    from saescope.corpus import CorpusConfig
    from saescope.sae import save_sae
    from saescope.store import open_store

    save_sae(build_sae(model), run_dir / "sae")
    # Few examples per feature: finding them takes a forward of the whole model per context.
    cfg = AnalysisConfig(
        corpus=CorpusConfig(context_length=64),
        n_tokens=N_TOKENS,
        batch_size=16,
        cofiring_tokens=N_TOKENS,
        top_k=6,
        quantile_intervals=4,
        per_interval=2,
        n_inactive=1,
        n_neighbours=5,
    )
    analysis = analyze(run_dir / "sae", cfg, model=model, progress=False)
    with open_store(run_dir / "features.db") as store:
        store.write_analysis(analysis)
    return run_dir, analysis.sae_id
