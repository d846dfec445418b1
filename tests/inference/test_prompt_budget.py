"""Prompt inference within a memory budget, on the real SmolLM2 and a random 65,536-feature
ReLU SAE with about a thousand features active per token: the encode by blocks of tokens and
the effects by chunks of features give what the computation in one piece gives, and the
process's peak memory stays near the budget where the one-piece tensors take hundreds of MB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from saescope.inference import run_prompt
from saescope.sae import SAEConfig, build_sae

HOOK = "blocks.3.hook_resid_post"
D_SAE = 65_536
ACTIVE = 1000  # features active on a token, about
BUDGET = 2 * 2**20  # elements (8 MiB): a handful of features or rows per step
PROMPT = " ".join(["The committee met on Tuesday to discuss the harbour's new budget."] * 19)
MiB = 2**20


def rss_kib(field: str) -> int:
    line = next(
        x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field)
    )
    return int(line.split()[1])


def peak_growth(work) -> tuple[object, float]:
    """(work(), how far the process's peak resident memory rose above where it stood, MiB)."""
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = rss_kib("VmRSS")
    result = work()
    return result, (rss_kib("VmHWM") - before) / 1024


@pytest.fixture(scope="module")
def big_sae(smollm2):
    """Random unit encoder directions, b_enc set so that about ACTIVE features fire a token."""
    generator = torch.Generator().manual_seed(0)
    cfg = SAEConfig(
        architecture="standard",
        d_in=smollm2.d_model,
        d_sae=D_SAE,
        model_name="smollm2",
        hook_name=HOOK,
    )
    sae = build_sae(cfg).eval()
    directions = torch.randn(D_SAE, smollm2.d_model, generator=generator)
    directions /= directions.norm(dim=1, keepdim=True)
    resid = smollm2.run_with_cache(smollm2.to_tokens(PROMPT[:200]), [HOOK])[HOOK][0, 1:]
    pre = resid @ directions.T  # [n, d_sae]
    threshold = pre.quantile(1 - ACTIVE / D_SAE, dim=1).mean()
    with torch.no_grad():
        sae.W_enc.copy_(directions.T)
        sae.W_dec.copy_(directions * 4.0)
        sae.b_enc.fill_(-float(threshold))
    return sae


@pytest.fixture(scope="module")
def run(smollm2, big_sae):
    return run_prompt(smollm2, big_sae, PROMPT, budget=BUDGET)


@torch.no_grad()
def one_piece_effects(run, position: int, features: list[int]) -> np.ndarray:
    """The effects computed as before the budget: every ablation and logit row at once."""
    acts = run.acts[position]
    ablated = acts.repeat(len(features), 1)
    ablated[torch.arange(len(features)), torch.tensor(features)] = 0
    full = run.sae.decode_with_stats(acts[None], None)
    contribution = full - run.sae.decode_with_stats(ablated, None)
    resid = run.final_resid[position]
    logits = run.model.unembed(torch.cat([resid[None], resid[None] - contribution]))
    logp = torch.log_softmax(logits.float(), dim=-1)[:, run.token_ids[position + 1]]
    return (logp[0] - logp[1:]).numpy().astype(np.float64)


def test_the_encode_by_blocks_equals_the_encode_in_one_piece(run, smollm2, big_sae):
    assert len(run) * D_SAE > 4 * BUDGET  # the block path is taken
    resid = smollm2.run_with_cache(smollm2.to_tokens(PROMPT), [HOOK])[HOOK][0]
    with torch.no_grad():
        expected = big_sae.encode(resid)
    torch.testing.assert_close(run.acts, expected, rtol=1e-5, atol=1e-5)
    active = (run.acts[1:] > 0).sum(-1).float().mean().item()
    assert ACTIVE / 3 < active < 3 * ACTIVE


def test_the_effects_by_chunks_equal_the_effects_in_one_piece(run):
    position = 40
    features = torch.nonzero(run.acts[position] > 0).flatten().tolist()[:300]
    chunked = run.logprob_effects(position, features)
    assert chunked is not None
    expected = one_piece_effects(run, position, features)
    np.testing.assert_allclose(chunked, expected, rtol=1e-4, atol=1e-6)
    assert np.abs(expected).max() > 1e-4  # the features move the prediction


def test_the_effects_peak_stays_near_the_budget_at_65k_features(run):
    position = 60
    features = torch.nonzero(run.acts[position] > 0).flatten().tolist()
    assert len(features) > ACTIVE / 3
    one_piece_mib = len(features) * (D_SAE + 3 * run.model.d_vocab) * 4 / MiB
    effects, growth = peak_growth(lambda: run.logprob_effects(position, features))
    assert effects is not None and len(effects) == len(features)
    assert one_piece_mib > 300  # what the tensors in one piece would hold
    assert growth < 60, (growth, one_piece_mib)


def test_the_encode_peak_stays_near_the_output(smollm2, big_sae):
    """acts [ctx, d_sae] itself is the output; the pre-activations around it are bounded."""
    tokens = smollm2.to_tokens(PROMPT)
    output_mib = tokens.shape[1] * D_SAE * 4 / MiB
    assert output_mib > 30
    run_prompt(smollm2, big_sae, PROMPT, budget=BUDGET)  # the model's first-call allocations
    _, growth = peak_growth(lambda: run_prompt(smollm2, big_sae, PROMPT, budget=BUDGET))
    assert growth < output_mib + 25, (growth, output_mib)
