"""Test SAEs built from a real model in a second: a TopK SAE whose decoder rows are real activation
directions (centred activations of corpus tokens at the hook point) and whose encoder is their
transpose, so its features fire on real text like a trained SAE's do, where training would take minutes.

Shared by the analysis, kernels, dashboards, server and distributed tests (`tests.sae_builders`).
"""

from __future__ import annotations

import torch


def topk_sae_from_activations(
    model,
    hook: str,
    d_sae: int,
    k: int,
    corpus_seed: int,
    seed: int = 0,
    b_enc: float = -0.5,
    n_contexts: int = 8,
):
    """A TopK SAE on `hook` of `model`; corpus_seed picks the contexts its directions come from
    (n_contexts of 64 tokens; keep them apart from the contexts a test analyses unless it wants
    its own tokens among the directions). b_enc: see topk_sae_from_samples."""
    from saescope.corpus import CorpusConfig, iter_context_batches

    tokens = next(
        iter(
            iter_context_batches(
                CorpusConfig(context_length=64, seed=corpus_seed), model.tokenizer, n_contexts
            )
        )
    )
    acts = model.run_with_cache(tokens, [hook])[hook][:, 1:].reshape(
        -1, model.hook_points()[hook]
    )  # BOS left out
    return topk_sae_from_samples(acts, hook, d_sae, k, seed=seed, b_enc=b_enc)


def topk_sae_from_samples(
    acts: torch.Tensor, hook: str, d_sae: int, k: int, seed: int = 0, b_enc: float = -0.5
):
    """A TopK SAE on `hook` of SmolLM2 whose directions are d_sae of `acts` ([n, d_in], real
    activations at the hook, BOS left out), picked with `seed` and centred on their mean.

    b_enc: a token's projection below -b_enc does not fire (so a feature has a threshold);
    0 keeps the L0 at k wherever k projections are positive."""
    from saescope.sae import SAEConfig, build_sae

    mean = acts.mean(0)
    picks = torch.randperm(len(acts), generator=torch.Generator().manual_seed(seed))[:d_sae]
    directions = acts[picks] - mean
    directions = directions / directions.norm(dim=1, keepdim=True)
    sae = build_sae(
        SAEConfig(
            architecture="topk",
            d_in=acts.shape[1],
            d_sae=d_sae,
            k=k,
            model_name="smollm2",
            hook_name=hook,
        )
    )
    with torch.no_grad():
        sae.W_dec.copy_(directions)
        sae.W_enc.copy_(directions.T)
        sae.b_dec.copy_(mean)
        sae.b_enc.fill_(b_enc)
    return sae
