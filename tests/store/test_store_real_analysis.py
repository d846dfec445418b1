"""End to end: the real analysis pass on the bundled SmolLM2, written to both backends and
read back: every field, a feature page with real token text, and search for a real token."""

from __future__ import annotations

import pytest
import torch

from tests.store.store_data import assert_same_analysis

HOOK = "blocks.1.hook_resid_post"  # an early layer: the forward stops there
D_SAE = 16


@pytest.fixture(scope="session")
def real_analysis(smollm2):
    """A TopK SAE whose decoder rows are real residual directions (so its features fire on
    real text like a trained SAE's), analysed over 512 tokens of the built-in corpus."""
    from saescope.analysis import AnalysisConfig, analyze
    from saescope.corpus import CorpusConfig, iter_context_batches
    from saescope.sae import SAEConfig, build_sae

    tokens = next(
        iter(iter_context_batches(CorpusConfig(context_length=32, seed=99), smollm2.tokenizer, 4))
    )
    acts = smollm2.run_with_cache(tokens, [HOOK])[HOOK][:, 1:].reshape(-1, smollm2.d_model)
    directions = acts[
        torch.randperm(len(acts), generator=torch.Generator().manual_seed(0))[:D_SAE]
    ] - acts.mean(0)
    sae = build_sae(
        SAEConfig(
            architecture="topk",
            d_in=smollm2.d_model,
            d_sae=D_SAE,
            k=4,
            model_name="smollm2",
            hook_name=HOOK,
        )
    )
    with torch.no_grad():
        sae.W_dec.copy_(directions / directions.norm(dim=1, keepdim=True))
        sae.W_enc.copy_(sae.W_dec.T)
        sae.b_dec.copy_(acts.mean(0))
        sae.b_enc.fill_(-0.5)
    cfg = AnalysisConfig(
        corpus=CorpusConfig(context_length=32),
        n_tokens=512,
        batch_size=16,
        cofiring_tokens=512,
        top_k=4,
        quantile_intervals=3,
        per_interval=2,
        n_inactive=1,
        n_neighbours=4,
    )
    return analyze(sae, cfg, model=smollm2, sae_id="smollm2/l1/topk-16", progress=False)


def test_real_analysis_round_trips_and_serves_pages(store, real_analysis):
    store.write_analysis(real_analysis)
    assert_same_analysis(store.load_analysis(real_analysis.sae_id), real_analysis)
    vocab = real_analysis.vocab
    live = [f for f in range(D_SAE) if real_analysis.features.density[f] > 0]
    assert live, "no feature fired"
    page = store.feature(real_analysis.sae_id, live[0])
    top = page["examples"]["top"][0]
    assert top["tokens"] == [vocab[i] for i in top["token_ids"]]
    assert top["acts"][top["center"]] == pytest.approx(top["max_act"])
    fired_on = top["tokens"][top["center"]].strip()
    if len(fired_on) >= 3:
        hits = store.search(fired_on, sae_id=real_analysis.sae_id, limit=D_SAE)
        assert live[0] in [h["feature"] for h in hits]
