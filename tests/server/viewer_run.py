"""A small real run for the viewer tests: an SAE on SmolLM2's layer-6 residual stream,
analysed by the real analysis pass over real corpus tokens into a real feature store.

The SAE is not trained (that takes minutes): its decoder rows are centred, unit-norm
residual-stream vectors of real tokens, its encoder their transpose, TopK k=8, so each
feature fires on tokens whose residual resembles the one it was cut from.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from saescope.analysis import AnalysisConfig, analyze
from saescope.corpus import CorpusConfig, iter_context_batches
from saescope.sae import SAEConfig, build_sae, save_sae
from saescope.store import open_store

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
    torch.manual_seed(0)
    corpus = CorpusConfig(context_length=CONTEXT)
    tokens = next(iter_context_batches(corpus, model.tokenizer, 16))  # [16, ctx]
    resid = model.run_with_cache(tokens, [HOOK])[HOOK][:, 1:]  # [16, ctx - 1, d] (no BOS)
    sae = _sae_from_residuals(resid.reshape(-1, model.d_model))
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


def _sae_from_residuals(resid: torch.Tensor):
    cfg = SAEConfig(
        architecture="topk",
        d_in=resid.shape[1],
        d_sae=D_SAE,
        k=K,
        hook_name=HOOK,
        model_name="smollm2",
        context_size=CONTEXT,
    )
    sae = build_sae(cfg)
    mean = resid.mean(0)
    rows = resid[torch.randperm(len(resid))[:D_SAE]] - mean
    with torch.no_grad():
        sae.W_dec.copy_(rows / rows.norm(dim=-1, keepdim=True))
        sae.W_enc.copy_(sae.W_dec.T)
        sae.b_dec.copy_(mean)
    return sae.eval()
