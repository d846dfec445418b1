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
from saescope.config import markdown_table, setting
from saescope.errors import ConfigError, SaescopeError
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
    """The architecture's own section of TrainConfig: `architecture.l1_coefficient`."""

    l1_coefficient: float | list[float] = setting(
        2.0, "the L1 penalty; a list trains one SAE per value", low=0.0
    )
    threshold_warmup: bool = setting(False, "an unused switch, to show a second setting")

    grid_fields: ClassVar[tuple[str, ...]] = ("l1_coefficient",)
    label_formats: ClassVar[dict[str, str]] = {"l1_coefficient": "l1_{:g}"}
    warmed_up: ClassVar[tuple[str, ...]] = ("l1_coefficient",)


class FixedThresholdReLU(Architecture):  # a user's module puts @register on the class
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
    """Registered while this module's tests run, not from its import on: pytest imports every
    test module before running any, and the other tests (the generated config reference among
    them) expect the built-in architectures only."""
    register(FixedThresholdReLU)
    yield
    unregister(FixedThresholdSAE.architecture)


def test_the_module_checks_its_own_fields():
    """Its section's checks, messages and docs come from its declaration, under architecture."""
    name = "fixed_threshold_relu"
    with pytest.raises(ConfigError) as err:
        TrainConfig(architecture={"name": name, "l1_coefficient": -1.0})
    assert err.value.field == "architecture.l1_coefficient" and "a number >= 0" in str(err.value)
    with pytest.raises(ConfigError) as err:
        TrainConfig(architecture={"name": name, "l1_coefficient": [1.0, -3.0]})
    assert err.value.field == "architecture.l1_coefficient" and err.value.value == [1.0, -3.0]
    with pytest.raises(ConfigError, match="architecture.threshold_warmup: got 'yes'"):
        TrainConfig.from_dict({"architecture": {"name": name, "threshold_warmup": "yes"}})
    with pytest.raises(SaescopeError, match="did you mean 'architecture.l1_coefficient'"):
        TrainConfig.from_dict({"architecture": {"name": name, "l1_coeficient": 1.0}})
    # overrides reach it as for any section (another architecture's settings, left over by a
    # switch of name, are dropped); flat keys of an older config reach it too
    cfg = TrainConfig().updated({"architecture.name": name, "architecture.threshold_warmup": True})
    assert cfg.architecture == FixedThresholdHyperparameters(name=name, threshold_warmup=True)
    flat = TrainConfig.from_dict({"architecture": name, "l1_coefficient": [1.0, 3.0]})
    grid = flat.sae_grid()
    assert [g["label"] for g in grid] == [f"{HOOK}-x16-l1_1", f"{HOOK}-x16-l1_3"]
    assert "| `architecture.threshold_warmup` | bool | `False` |" in markdown_table(TrainConfig)


def test_a_plugin_architecture_trains_saves_loads_and_is_analysed(layer6_cache, tmp_path):
    steps, batch = 60, 64
    cfg = TrainConfig(
        run_dir=str(tmp_path / "run"),
        activations={"cache": str(layer6_cache), "buffer_tokens": 4096},
        architecture={"name": "fixed_threshold_relu", "l1_coefficient": 0.5},
        sae={"expansion_factor": 2, "b_dec_init_tokens": 2048},
        optim={"batch_size": batch, "training_tokens": steps * batch, "lr": 3e-3},
        schedule={"lr_warmup_fraction": 0.0},
        logging={"log_every_steps": 1, "checkpoint_every_tokens": 10**9, "progress": False},
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
