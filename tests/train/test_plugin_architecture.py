"""A new architecture is one module: defined here and nowhere else, it trains on real SmolLM2
activations through the real Trainer, saves, loads back through load_sae, and analysis encodes it.

The architecture: a ReLU whose features fire only above a fixed threshold, trained with an L1
penalty. Everything it needs is in the first part of this file, as it would be in its own module
under saescope/sae/architectures/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from torch.nn import functional as F

from saescope.activations import load_cache
from saescope.analysis.sparse import SparseActs, sparse_codes
from saescope.errors import ConfigError
from saescope.sae import SAE, load_sae
from saescope.sae.architectures import (
    Architecture,
    Hyperparameters,
    register,
    unregister,
)
from saescope.sae.training.losses import (
    LossSettings,
    StepOutput,
    active_l0,
    encoder_pre,
    fire_counts,
    l1_penalty,
    squared_error,
)
from saescope.train import TrainConfig, train

# ---- the architecture module -------------------------------------------------------------------

THRESHOLD = 0.1  # pre-activations at or below it never fire


class FixedThresholdSAE(SAE):
    """acts = relu(hidden_pre) where hidden_pre > THRESHOLD, else 0."""

    architecture = "fixed_threshold_relu"

    def activation(self, hidden_pre: torch.Tensor) -> torch.Tensor:
        return F.relu(hidden_pre) * (hidden_pre > THRESHOLD)


@dataclass
class FixedThresholdHyperparameters(Hyperparameters):
    l1_coefficient: float | list[float]

    grid_fields: ClassVar[tuple[str, ...]] = ("l1_coefficient",)
    label_formats: ClassVar[dict[str, str]] = {"l1_coefficient": "l1_{:g}"}
    warmed_up: ClassVar[tuple[str, ...]] = ("l1_coefficient",)

    def validate(self) -> None:
        for value in (
            self.l1_coefficient if isinstance(self.l1_coefficient, list) else [self.l1_coefficient]
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError("l1_coefficient", value, "a number >= 0")


@register
class FixedThresholdReLU(Architecture):
    sae_class = FixedThresholdSAE
    hyperparameters = FixedThresholdHyperparameters

    def loss(self, sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
        pre = encoder_pre(sae, x)
        acts = F.relu(pre) * (pre > THRESHOLD)
        recon = acts @ sae.W_dec + sae.b_dec
        mse = squared_error(recon, x)
        l1 = l1_penalty(acts, sae, s)
        loss = mse + s.l1_coefficient * l1
        return StepOutput(loss, mse.detach(), active_l0(acts), fire_counts(acts), l1.detach())


# ---- its test ----------------------------------------------------------------------------------

HOOK = "blocks.6.hook_resid_post"


@pytest.fixture(scope="module", autouse=True)
def registered() -> Iterator[None]:
    """The architecture registered itself on import; leave the registry as the other tests expect it."""
    yield
    unregister(FixedThresholdSAE.architecture)


def test_the_module_checks_its_own_fields():
    with pytest.raises(ConfigError) as err:
        TrainConfig(architecture="fixed_threshold_relu", l1_coefficient=-1.0)
    assert err.value.field == "l1_coefficient" and "a number >= 0" in str(err.value)
    grid = TrainConfig(architecture="fixed_threshold_relu", l1_coefficient=[1.0, 3.0]).sae_grid()
    assert [g["label"] for g in grid] == [f"{HOOK}-x16-l1_1", f"{HOOK}-x16-l1_3"]


def test_a_plugin_architecture_trains_saves_loads_and_is_analysed(layer6_cache, tmp_path):
    steps, batch = 60, 64
    cfg = TrainConfig(
        run_dir=str(tmp_path / "run"),
        activation_cache=str(layer6_cache),
        architecture="fixed_threshold_relu",
        expansion_factor=2,
        l1_coefficient=0.5,
        batch_size=batch,
        buffer_tokens=4096,
        training_tokens=steps * batch,
        lr=3e-3,
        lr_warmup_fraction=0.0,
        log_every_steps=1,
        b_dec_init_tokens=2048,
        checkpoint_every_tokens=10**9,
        progress=False,
    )
    run_dir = train(cfg)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if r["kind"] == "train"]
    assert len(losses) == steps
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:3]) / 3, losses  # it learnt

    saved = json.loads((run_dir / "sae" / "cfg.json").read_text())
    assert saved["architecture"] == "fixed_threshold_relu"
    sae = load_sae(run_dir / "sae")
    assert type(sae) is FixedThresholdSAE and sae.cfg.d_sae == 2 * 576

    _, acts = list(load_cache(layer6_cache, batch_size=4))[-1]
    x = acts[HOOK][:, 1:].float()  # [4, length, 576] raw activations, BOS left out
    flat = x.reshape(-1, 576)
    with torch.no_grad():
        dense = sae.encode(flat)  # [n, 1152]
        pre = sae.pre_acts(sae.sae_input(sae.normalize_input(flat)[0]))
    assert bool((dense[pre <= THRESHOLD] == 0).all()) and bool((dense > 0).any())
    l0 = float((dense > 0).sum(-1).float().mean())
    assert 0 < l0 < sae.d_sae / 2, l0

    # analysis's sparse encoding: the same non-zero activations, looked up by (row, position, feature)
    rows_, features, values = sparse_codes(sae, flat)
    assert torch.equal(values, dense[rows_, features]) and len(values) == int((dense > 0).sum())
    sparse, _ = SparseActs.encode(sae, x, skip_first=False)
    length = x.shape[1]
    row, position = torch.div(rows_, length, rounding_mode="floor"), rows_ % length
    assert torch.equal(sparse.get(row, position, features), values)
    assert torch.equal(sparse.dense(1, 0, length), dense[length : 2 * length])
