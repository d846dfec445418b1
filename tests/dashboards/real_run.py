"""A tiny real run for the dashboard tests: a TopK SAE on SmolLM2's layer-3 residual stream,
analysed over a few thousand tokens of the built-in corpus and written to a SQLite store.

The SAE's decoder rows are real activation directions (centred residuals of other corpus
tokens) and its encoder their transpose, so its features fire on real text like a trained
SAE's; building it takes a second, where training would take minutes.
"""

from __future__ import annotations

from pathlib import Path

import torch

PROMPT = "The capital of France is Paris, and the capital of Germany is Berlin."

HOOK = "blocks.3.hook_resid_post"
D_SAE = 32
K = 4
N_TOKENS = 1024


def build_sae(model, seed: int = 0):
    from saescope.corpus import CorpusConfig, iter_context_batches
    from saescope.sae import SAEConfig
    from saescope.sae import build_sae as empty_sae

    corpus = CorpusConfig(context_length=64, seed=2000 + seed)  # not the analysed contexts
    tokens = next(iter(iter_context_batches(corpus, model.tokenizer, 8)))
    acts = model.run_with_cache(tokens, [HOOK])[HOOK][:, 1:].reshape(-1, model.d_model)
    mean = acts.mean(0)
    picks = torch.randperm(len(acts), generator=torch.Generator().manual_seed(seed))[:D_SAE]
    directions = acts[picks] - mean
    directions = directions / directions.norm(dim=1, keepdim=True)
    cfg = SAEConfig(architecture="topk", d_in=model.d_model, d_sae=D_SAE, k=K, model_name="smollm2", hook_name=HOOK)
    sae = empty_sae(cfg)
    with torch.no_grad():
        sae.W_dec.copy_(directions)
        sae.W_enc.copy_(directions.T)
        sae.b_dec.copy_(mean)
        sae.b_enc.fill_(-0.5)
    return sae


def make_run(model, run_dir: Path) -> tuple[Path, str]:
    """run_dir/sae (the SAE) and run_dir/features.db (its analysis); returns (run_dir, sae_id)."""
    from saescope.analysis import AnalysisConfig, analyze
    from saescope.corpus import CorpusConfig
    from saescope.sae import save_sae
    from saescope.store import open_store

    save_sae(build_sae(model), run_dir / "sae")
    # Few examples per feature: finding them takes a forward of the whole model per context.
    cfg = AnalysisConfig(corpus=CorpusConfig(context_length=64), n_tokens=N_TOKENS, batch_size=16,
                         cofiring_tokens=N_TOKENS, top_k=6, quantile_intervals=4, per_interval=2,
                         n_inactive=1, n_neighbours=5)
    analysis = analyze(run_dir / "sae", cfg, model=model, progress=False)
    _number_quantile_examples(analysis)
    with open_store(run_dir / "features.db") as store:
        store.write_analysis(analysis)
    return run_dir, analysis.sae_id


def _number_quantile_examples(analysis) -> None:
    """The store wants `rank` unique within a feature's kind (the contract: "order within its
    kind"); the analysis pass currently numbers quantile examples within each interval."""
    ranks: dict[int, int] = {}
    quantile = sorted((ex for ex in analysis.examples if ex.kind == "quantile"), key=lambda ex: (ex.feature, ex.interval, ex.rank))
    if len({(ex.feature, ex.rank) for ex in quantile}) == len(quantile):
        return
    for ex in quantile:
        ex.rank = ranks.get(ex.feature, 0)
        ranks[ex.feature] = ex.rank + 1
