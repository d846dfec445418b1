"""Evals on the real SmolLM2: numbers checked against independent computations."""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn import functional as F

from saescope.cli import main
from saescope.corpus import CorpusConfig, iter_context_batches
from saescope.errors import SaescopeError
from saescope.evals import evaluate
from saescope.sae import SAEConfig, build_sae, load_sae
from saescope.train import TrainConfig, train

HOOK = "blocks.6.hook_resid_post"
CORPUS = CorpusConfig(context_length=64)
N_TOKENS = 4 * 64  # one batch of four contexts


def run_eval(sae, model, **kwargs):
    return evaluate(
        sae,
        model=model,
        corpus=CORPUS,
        n_tokens=N_TOKENS,
        batch_contexts=4,
        progress=False,
        **kwargs,
    )


def identity_sae(d: int) -> torch.nn.Module:
    """A ReLU SAE that reconstructs exactly: latents relu(x_i) and relu(-x_i), decoded back as
    x_i."""
    sae = build_sae(
        SAEConfig(
            architecture="standard", d_in=d, d_sae=2 * d, hook_name=HOOK, model_name="smollm2"
        )
    )
    eye = torch.eye(d)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))
        sae.W_dec.copy_(torch.cat([eye, -eye], dim=0))
    return sae


def zero_sae(d: int) -> torch.nn.Module:
    return build_sae(SAEConfig(architecture="topk", d_in=d, d_sae=4 * d, k=8, hook_name=HOOK))


@pytest.fixture(scope="module")
def trained_run(smollm2, tmp_path_factory):
    """A small TopK SAE trained on live activations from the model (8 steps of 512 tokens)."""
    cfg = TrainConfig(
        run_dir=str(tmp_path_factory.mktemp("eval") / "run"),
        corpus={"context_length": 64, "seed": 1},
        sae={"expansion_factor": 2, "b_dec_init_tokens": 512},
        architecture={"name": "topk", "k": 16},
        optim={"batch_size": 512, "training_tokens": 8 * 512, "lr": 3e-3},
        # normalize false skips the 16k-token norm estimate: not what these tests check
        activations={"buffer_tokens": 2048, "normalize": False},
        logging={"progress": False},
    )
    return train(cfg, model=smollm2)


def test_identity_sae_recovers_all_of_the_ce_loss(smollm2):
    r = run_eval(identity_sae(576), smollm2)
    assert r["fvu"] == pytest.approx(0.0, abs=1e-6)
    assert r["ce_loss_sae"] == pytest.approx(r["ce_loss_clean"], abs=1e-4)
    assert r["ce_loss_recovered"] == pytest.approx(1.0, abs=1e-4)
    assert r["kl_div"] == pytest.approx(0.0, abs=1e-5)
    assert r["ce_loss_ablated"] > r["ce_loss_clean"] + 1


def test_zero_sae_equals_zero_ablation(smollm2):
    r = run_eval(zero_sae(576), smollm2)
    assert r["ce_loss_sae"] == pytest.approx(r["ce_loss_ablated"], abs=1e-5)
    assert r["ce_loss_recovered"] == pytest.approx(0.0, abs=1e-5)
    assert r["l0"] == 0 and r["unfired_fraction"] == 1.0
    assert r["fvu"] > 1  # predicting 0 is worse than predicting the mean


def test_clean_ce_and_reconstruction_match_an_independent_computation(smollm2, trained_run):
    r = run_eval(trained_run / "sae", smollm2)
    tokens = next(iter_context_batches(CORPUS, smollm2.tokenizer, 4))  # the same 4 contexts
    with torch.no_grad():
        logits = smollm2.forward(tokens)
        ce = F.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1)
        )
        x = smollm2.run_with_cache(tokens, [HOOK])[HOOK][:, 1:].reshape(-1, 576)  # BOS excluded
        sae = load_sae(trained_run / "sae")
        acts = sae.encode(x)
        recon = sae.decode(acts)
    assert r["ce_loss_clean"] == pytest.approx(float(ce), rel=1e-5)
    assert r["n_tokens"] == x.shape[0]
    assert r["fvu"] == pytest.approx(
        float((recon - x).pow(2).sum() / (x - x.mean(0)).pow(2).sum()), rel=1e-4
    )
    assert r["l0"] == pytest.approx(float((acts > 0).sum(-1).float().mean()), rel=1e-6)
    density = (acts > 0).float().mean(0)
    assert r["unfired_fraction"] == pytest.approx(float((density == 0).float().mean()))
    assert r["dense_fraction"] == pytest.approx(float((density > 0.1).float().mean()))
    assert 0 < r["ce_loss_recovered"] < 1 and r["l0"] <= 16


def test_cli_evaluates_a_run_and_writes_its_files(trained_run, capsys):
    assert (
        main(
            [
                "eval",
                str(trained_run),
                "--tokens",
                "256",
                "--batch-contexts",
                "4",
                "--context-length",
                "64",
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "CE loss recovered" in table and "FVU" in table
    results = json.loads((trained_run / "sae" / "eval.json").read_text())
    density = json.loads((trained_run / "sae" / "feature_density.json").read_text())
    assert len(density["log10_density"]) == 1152
    assert sum(density["histogram"]["counts"]) + density["histogram"]["never_fired"] == 1152
    assert (trained_run / "sae" / "feature_density.png").stat().st_size > 5_000
    evals = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert [e for e in evals if e["kind"] == "eval"][-1]["fvu"] == results["fvu"]


def test_sae_for_another_width_is_refused(smollm2):
    sae = load_sae("tests/fixtures/saelens/standard_layer_norm")
    wrong_width = "the SAE reads 16-wide inputs but hook point .* is 576 wide"
    with pytest.raises(SaescopeError, match=wrong_width):
        run_eval(sae, smollm2, hook=HOOK)
