"""A small real run for the viewer tests: an SAE on SmolLM2's layer-6 residual stream,
analysed by the real analysis pass over real corpus tokens into a real feature store.

The SAE is not trained (that takes minutes): tests/sae_builders.py cuts its decoder rows from
the residuals of real tokens (centred, unit-norm; the encoder their transpose), TopK k=8, so
each feature fires on tokens whose residual resembles the one it was cut from.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from saescope.analysis import AnalysisConfig, analyze
from saescope.corpus import CorpusConfig
from saescope.sae import save_sae
from saescope.store import open_store
from tests.sae_builders import topk_sae_from_activations

HOOK = "blocks.6.hook_resid_post"
D_SAE, K = 64, 8
CONTEXT, N_TOKENS = 64, 2048
SAE_ID = f"smollm2/{HOOK}/topk-{D_SAE}"
# texts the live-inference tests send: prose and code, of different lengths
TEXTS = [
    "The cat sat on the mat.",
    "def __init__(self):\n    return None",
    "Paris is the capital of France.",
    "import numpy as np",
    "Hello world, this is a test of the viewer.",
    "for i in range(10): print(i)",
]


def direct_acts(model, sae, text: str) -> torch.Tensor:
    """[n, d_sae] the SAE's activations on the text (BOS first), computed here, outside the server."""
    with torch.no_grad():
        return sae.encode(model.run_with_cache(model.to_tokens(text), [HOOK])[HOOK])[0]


def build_run(model, run_dir: Path) -> Path:
    """Write run_dir/sae/, run_dir/features.db and a run.json; return run_dir."""
    corpus = CorpusConfig(context_length=CONTEXT)
    # Directions from the first 16 analysed contexts (the corpus's seed 0, CONTEXT = the builder's
    # 64) and b_enc 0, as the viewer tests were written for: the L0 is then k (test_api checks
    # it; directions from other contexts gave 7.95).
    sae = topk_sae_from_activations(
        model, HOOK, D_SAE, K, corpus_seed=0, n_contexts=16, b_enc=0.0
    ).eval()
    save_sae(sae, run_dir / "sae")
    (run_dir / "run.json").write_text(
        json.dumps({"name": "viewer-test", "train": {"saes": {"sae": str(run_dir / "sae")}}})
    )
    cfg = AnalysisConfig(
        corpus=corpus,
        n_tokens=N_TOKENS,
        batch_size=8,
        top_k=8,
        quantile_intervals=4,
        per_interval=2,
        n_inactive=1,
        window=(8, 4),
        cofiring_tokens=N_TOKENS,
    )
    analysis = analyze(sae, cfg, model=model, sae_id=SAE_ID, progress=False)
    with open_store(run_dir / "features.db") as store:
        store.write_analysis(analysis)
    return run_dir
