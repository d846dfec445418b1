"""Prompt inference on the real SmolLM2 and a real TopK SAE: activations equal the SAE's
encoding of the model's hook activations, the effect on the next token equals an explicit
recomputation through the model's own unembedding, and the rankings order what they say."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saescope.errors import ConfigError
from saescope.inference import QuantileTable, activation_quantiles, run_prompt
from saescope.sae import SAEConfig, build_sae

HOOK = "blocks.3.hook_resid_post"
PROMPT = "def add(a, b):\n    return a + b\n\nprint(add(2, 3))"


@pytest.fixture(scope="module")
def sae(smollm2):
    """A TopK SAE whose decoder rows are real (centred) residual directions of the prompt's
    own tokens, so its features fire on it."""
    tokens = smollm2.to_tokens("The quick brown fox jumps over the lazy dog. import numpy as np")
    acts = smollm2.run_with_cache(tokens, [HOOK])[HOOK][0, 1:]
    mean = acts.mean(0)
    directions = torch.cat(
        [acts - mean, torch.randn(48, acts.shape[1], generator=torch.Generator().manual_seed(0))]
    )
    directions = directions / directions.norm(dim=1, keepdim=True)
    cfg = SAEConfig(
        architecture="topk",
        d_in=smollm2.d_model,
        d_sae=len(directions),
        k=6,
        model_name="smollm2",
        hook_name=HOOK,
    )
    sae = build_sae(cfg)
    with torch.no_grad():
        sae.W_dec.copy_(directions)
        sae.W_enc.copy_(directions.T)
        sae.b_dec.copy_(mean)
    return sae


@pytest.fixture(scope="module")
def run(smollm2, sae):
    return run_prompt(smollm2, sae, PROMPT)


@pytest.fixture(scope="module")
def quantiles(sae):
    """A quantile table: values at 50/90/99% = (1, 2, 3) x a per-feature scale, max 4 x scale."""
    scale = 1 + np.arange(sae.d_sae) % 5
    values = np.outer(scale, [1.0, 2.0, 3.0])
    return QuantileTable.from_arrays(np.array([0.5, 0.9, 0.99]), values, 4.0 * scale)


def test_activations_are_the_saes_encoding_of_the_hook(run, smollm2, sae):
    tokens = smollm2.to_tokens(PROMPT)
    assert run.token_ids == tokens[0].tolist()
    assert run.tokens == [smollm2.tokenizer.decode([t]) for t in run.token_ids]
    expected = sae.encode(smollm2.run_with_cache(tokens, [HOOK])[HOOK][0])
    torch.testing.assert_close(run.acts, expected)
    assert ((run.acts > 0).sum(-1) <= 6).all()


def test_top_features_per_token(run):
    ids, values = run.top_features(3)
    assert ids.shape == values.shape == (len(run), 3)
    for position in range(len(run)):
        row = run.acts[position]
        for f, v in zip(ids[position], values[position], strict=True):
            if f >= 0:
                assert row[f].item() == pytest.approx(v)
        assert values[position, 0] == pytest.approx(row.max().clamp_min(0).item())


def test_effect_on_the_next_token_matches_the_models_unembedding(run, smollm2, sae):
    tokens = smollm2.to_tokens(PROMPT)
    last = f"blocks.{smollm2.n_layers - 1}.hook_resid_post"
    final = smollm2.run_with_cache(tokens, [last], stop_early=False)[last][0]
    # the final residual read there is what the model unembeds
    torch.testing.assert_close(
        smollm2.unembed(final), smollm2.forward(tokens)[0], atol=1e-3, rtol=1e-3
    )
    position = 5
    active = torch.nonzero(run.acts[position] > 0).flatten().tolist()
    effects = run.logprob_effects(position, active)
    next_token = run.token_ids[position + 1]
    for f, effect in zip(active, effects, strict=True):
        without = (
            final[position] - run.acts[position, f] * sae.W_dec[f]
        )  # no normalisation: act * direction
        logp = torch.log_softmax(smollm2.unembed(torch.stack([final[position], without])), -1)[
            :, next_token
        ]
        assert effect == pytest.approx((logp[0] - logp[1]).item(), abs=2e-4)
    assert np.abs(effects).max() > 1e-3  # real features move the prediction


def test_rankings_at_a_token(run, quantiles):
    position = 4
    ranking = run.rank_at(position, quantiles, n=4)
    active = torch.nonzero(run.acts[position] > 0).flatten().tolist()
    assert len(ranking.by_act) == min(4, len(active))
    acts = [r.act for r in ranking.by_act]
    assert acts == sorted(acts, reverse=True)
    assert acts[0] == pytest.approx(run.acts[position].max().item())
    q = [r.quantile for r in ranking.by_quantile]
    assert q == sorted(q, reverse=True)
    for row in ranking.by_quantile:
        expected = activation_quantiles(
            np.array([row.act]),
            quantiles.levels,
            quantiles.values_of([row.feature]),
            quantiles.max_act_of([row.feature]),
        )[0]
        assert row.quantile == pytest.approx(expected)
    effects = [r.logprob_effect for r in ranking.by_effect]
    assert effects == sorted(effects, reverse=True)
    every = run.logprob_effects(position, active)
    assert effects[0] == pytest.approx(every.max())
    # the last token has no next token: no effects, the other rankings still there
    last = run.rank_at(len(run) - 1, quantiles)
    assert (
        last.by_effect == [] and last.by_act and all(r.logprob_effect is None for r in last.by_act)
    )
    # without a quantile table: no quantile ranking
    assert run.rank_at(position).by_quantile == []


def test_activation_quantiles_interpolate_the_stored_table():
    levels = np.array([0.5, 0.9, 0.99])
    values = np.array([[1.0, 2.0, 3.0]] * 6)
    max_act = np.full(6, 4.0)
    got = activation_quantiles(np.array([0.0, 0.5, 1.0, 1.5, 3.5, 9.0]), levels, values, max_act)
    np.testing.assert_allclose(got, [0.0, 0.25, 0.5, 0.7, 0.995, 1.0])


def test_bad_prompts_and_positions(run, smollm2, sae):
    with pytest.raises(ConfigError, match="prompt"):
        run_prompt(smollm2, sae, "   ")
    with pytest.raises(ConfigError, match=r"token: got 99; expected a token position in 0\.\."):
        run.rank_at(99)
    ids = run_prompt(smollm2, sae, [1, 2, 3, 4])  # token ids as they are
    assert ids.token_ids == [1, 2, 3, 4] and ids.text is None
