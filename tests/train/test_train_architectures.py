"""Training BatchTopK, Matryoshka BatchTopK, JumpReLU and Gated SAEs on real SmolLM2 activations.

Each trains a few hundred small steps on the session's layer-6 cache; the loss falls, L0 and
FVU land somewhere sensible, and what only that architecture learns (BatchTopK's inference
threshold, JumpReLU's thresholds, Matryoshka's useful prefixes, the gate) is checked on the
saved SAE with held-out activations.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from saescope.activations import load_cache
from saescope.sae import load_sae
from saescope.train import TrainConfig, train

HOOK = "blocks.6.hook_resid_post"
STEPS = 250
BATCH = 64


def config(
    run_dir: Path, cache: Path, architecture: str, changes: dict | None = None
) -> TrainConfig:
    """A 250-step run of one architecture; changes: {"schedule.l1_warmup_fraction": 0.0, ...}."""
    cfg = TrainConfig(
        run_dir=str(run_dir),
        activations={"cache": str(cache), "buffer_tokens": 4096},
        sae={"expansion_factor": 4, "b_dec_init_tokens": 2048},
        architecture={"name": architecture},
        optim={"batch_size": BATCH, "training_tokens": STEPS * BATCH, "lr": 3e-3},
        schedule={"lr_warmup_fraction": 0.0},
        logging={"log_every_steps": 1, "checkpoint_every_tokens": 10**9, "progress": False},
    )
    k = {"architecture.k": 16} if "k" in cfg.architecture.field_names() else {}
    return cfg.updated({**k, **(changes or {})})


def train_rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["kind"] == "train"]


def mean_of(rows: list[dict], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows)


@pytest.fixture(scope="module")
def held_out(layer6_cache) -> torch.Tensor:
    """Raw activations [16 * 127, 576] of the cache's last 16 contexts, BOS left out. Training reads
    250 x 64 tokens through shuffle windows of 32 contexts: at most the first 128 of the 160."""
    _, acts = list(load_cache(layer6_cache, batch_size=16))[-1]
    return acts[HOOK][:, 1:].reshape(-1, acts[HOOK].shape[-1]).float()


@torch.no_grad()
def fvu_l0(sae, x: torch.Tensor, keep: slice | None = None) -> tuple[float, float]:
    """FVU and L0 of the saved SAE on raw activations; keep: only these latents decode."""
    acts = sae.encode(x)
    if keep is not None:
        mask = torch.zeros(sae.d_sae, dtype=torch.bool)
        mask[keep] = True
        acts = acts * mask
    recon = sae.decode(acts)
    fvu = float((recon - x).pow(2).sum() / (x - x.mean(0)).pow(2).sum())
    return fvu, float((acts > 0).sum(-1).float().mean())


def check_learnt(rows: list[dict]) -> None:
    """The loss fell and the reconstruction got good over training (per-batch values are noisy: means)."""
    first, last = rows[:3], rows[-25:]
    assert mean_of(last, "loss") < 0.5 * mean_of(first, "loss"), [r["loss"] for r in rows]
    assert mean_of(last, "fvu") < 0.4, [r["fvu"] for r in rows]


def test_batchtopk_learns_and_exports_its_threshold(layer6_cache, held_out, tmp_path):
    run_dir = train(config(tmp_path / "run", layer6_cache, "batchtopk"))
    rows = train_rows(run_dir)
    check_learnt(rows)
    # batch-level top-k: exactly k active per token on average in training
    assert all(r["l0"] == pytest.approx(16, abs=1e-3) for r in rows)

    sae = load_sae(run_dir / "sae")
    threshold = float(sae.threshold)
    assert threshold > 0, "the inference threshold was never learnt"
    fvu, l0 = fvu_l0(sae, held_out)
    # at inference the single threshold stands in for the batch top-k: about k latents per token
    assert 16 / 3 < l0 < 16 * 3, l0
    assert fvu < 0.45, fvu
    # the threshold is what makes the SAE sparse: without it every positive latent fires
    sae.threshold.fill_(0.0)
    assert fvu_l0(sae, held_out)[1] > 2 * l0


def test_matryoshka_prefixes_reconstruct_on_their_own(layer6_cache, held_out, tmp_path):
    matryoshka_dir = train(config(tmp_path / "m", layer6_cache, "matryoshka_batchtopk"))
    plain_dir = train(config(tmp_path / "b", layer6_cache, "batchtopk"))
    check_learnt(train_rows(matryoshka_dir))

    sae = load_sae(matryoshka_dir / "sae")
    widths = sae.cfg.matryoshka_widths
    assert widths == [144, 576, 2304]  # default fractions 1/16, 3/16, 3/4 of 2304
    assert float(sae.threshold) > 0
    fvu, l0 = fvu_l0(sae, held_out)
    assert fvu < 0.5 and 16 / 3 < l0 < 16 * 3, (fvu, l0)
    # the first 144 latents alone reconstruct much better than the first 144 of a plain BatchTopK
    # SAE trained on the same batches: the nested losses put the coarse features first
    prefix_fvu, _ = fvu_l0(sae, held_out, keep=slice(0, widths[0]))
    plain_prefix_fvu, _ = fvu_l0(load_sae(plain_dir / "sae"), held_out, keep=slice(0, widths[0]))
    assert prefix_fvu < 0.8 * plain_prefix_fvu, (prefix_fvu, plain_prefix_fvu)


def test_jumprelu_thresholds_move_and_l0_falls(layer6_cache, held_out, tmp_path):
    # the L0 penalty at full strength from the start (default coefficient and bandwidth)
    run_dir = train(
        config(tmp_path / "run", layer6_cache, "jumprelu", {"schedule.l1_warmup_fraction": 0.0})
    )
    rows = train_rows(run_dir)
    check_learnt(rows)
    assert mean_of(rows[-25:], "l0") < 0.6 * mean_of(rows[:3], "l0"), [r["l0"] for r in rows]

    sae = load_sae(run_dir / "sae")
    threshold = sae.threshold.detach()
    assert float((threshold - 0.001).median()) > 0.05, "the thresholds did not move from 0.001"
    assert float(threshold.std()) > 0.005, "every threshold moved alike"
    fvu, l0 = fvu_l0(sae, held_out)
    assert fvu < 0.2, fvu
    assert l0 < 0.3 * sae.d_sae, l0
    # the thresholds are what makes it sparse: at 0 every positive latent fires
    sae.threshold.data.zero_()
    assert fvu_l0(sae, held_out)[1] > 1.2 * l0


def test_gated_sae_learns_a_sparse_gate(layer6_cache, held_out, tmp_path):
    run_dir = train(
        config(tmp_path / "run", layer6_cache, "gated", {"schedule.l1_warmup_fraction": 0.0})
    )
    rows = train_rows(run_dir)
    check_learnt(rows)
    assert mean_of(rows[-25:], "l0") < 0.1 * mean_of(rows[:3], "l0"), [r["l0"] for r in rows]

    sae = load_sae(run_dir / "sae")
    assert sae.cfg.architecture == "gated"
    assert float(sae.r_mag.detach().abs().max()) > 0, "the magnitude path never left the gate path"
    fvu, l0 = fvu_l0(sae, held_out)
    assert fvu < 0.4 and l0 < 0.05 * sae.d_sae, (fvu, l0)
