"""Fixtures for analysis tests: a real TopK SAE on SmolLM2's layer-3 residual stream, saved to disk.

Its decoder rows are real activation directions (centred residuals of corpus tokens) and its
encoder their transpose, so features fire on real text like a trained SAE's do; it takes a
second to build, where training would take minutes.
"""

from __future__ import annotations

import pytest
import torch

HOOK = "blocks.3.hook_resid_post"
D_SAE = 96
K = 8


def build_topk_sae(model, hook: str = HOOK, d_sae: int = D_SAE, k: int = K, seed: int = 0):
    from saescope.corpus import CorpusConfig, iter_context_batches
    from saescope.sae import SAEConfig, build_sae

    corpus = CorpusConfig(context_length=64, seed=1000 + seed)  # other contexts than the analysed ones
    tokens = next(iter(iter_context_batches(corpus, model.tokenizer, 8)))
    acts = model.run_with_cache(tokens, [hook])[hook][:, 1:].reshape(-1, model.hook_points()[hook])
    mean = acts.mean(0)
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randperm(len(acts), generator=generator)[:d_sae]
    directions = acts[picks] - mean
    directions = directions / directions.norm(dim=1, keepdim=True)
    cfg = SAEConfig(architecture="topk", d_in=acts.shape[1], d_sae=d_sae, k=k, model_name="smollm2", hook_name=hook)
    sae = build_sae(cfg)
    with torch.no_grad():
        sae.W_dec.copy_(directions)
        sae.W_enc.copy_(directions.T)
        sae.b_dec.copy_(mean)
        sae.b_enc.fill_(-0.5)
    return sae


@pytest.fixture(scope="session")
def sae_dir(smollm2, tmp_path_factory):
    from saescope.sae import save_sae

    out = tmp_path_factory.mktemp("sae") / "topk"
    save_sae(build_topk_sae(smollm2), out)
    return out
