"""Data-parallel training under torchrun with gloo: 2 ranks follow 1 rank, and resume on another rank count."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from saescope.fileio import read_json, write_json
from saescope.train import TrainConfig, train
from saescope.train.checkpoint import load_checkpoint
from saescope.train.config import flat_fields
from saescope.train.trainer import Trainer

HOOK = "blocks.2.hook_resid_post"
# 8 steps of 256 tokens: the lr schedule warms up and decays inside them
SETTINGS = {
    "model.hooks": HOOK,
    "sae.expansion_factor": 4,
    "architecture.k": 16,
    "optim.batch_size": 256,
    "activations.buffer_tokens": 2048,
    "optim.training_tokens": 2048,
    "logging.log_every_steps": 2,
    "sae.b_dec_init_tokens": 1024,
    "optim.lr": 1e-3,
    "schedule.lr_warmup_fraction": 0.25,
    "schedule.lr_decay_fraction": 0.25,
    "logging.progress": False,
}


def config(cache: Path, run_dir: Path) -> TrainConfig:
    return TrainConfig().updated(
        {"run_dir": str(run_dir), "activations.cache": str(cache), **SETTINGS}
    )


def overrides(cfg: TrainConfig) -> list[str]:
    fields = flat_fields(cfg.to_dict())
    return [
        f"{k}={fields[k]}"
        for k in ("run_dir", "activations.cache", *SETTINGS)
        if k != "logging.progress"
    ]


def assert_same_sae(a: Path, b: Path) -> None:
    wa, wb = (
        load_file(a / "sae" / "sae_weights.safetensors"),
        load_file(b / "sae" / "sae_weights.safetensors"),
    )
    assert wa.keys() == wb.keys()
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-4, atol=2e-4, msg=name)


@pytest.fixture(scope="module")
def one_rank_run(dist_cache, tmp_path_factory) -> Path:
    """The reference: the run trained by one process, uninterrupted."""
    run_dir = tmp_path_factory.mktemp("one-rank") / "one"
    train(config(dist_cache, run_dir))
    return run_dir


def test_two_ranks_train_the_same_sae_as_one(dist_cache, one_rank_run, torchrun, tmp_path):
    two = config(dist_cache, tmp_path / "two")
    (tmp_path / "cfg.yaml").write_text("architecture: topk\n")
    torchrun(
        ["-m", "saescope", "train", "cfg.yaml", *overrides(two), "--no-progress"], cwd=tmp_path
    )
    assert_same_sae(one_rank_run, tmp_path / "two")
    # the untrained SAE is far from both: the comparison can tell runs apart
    start = load_file(one_rank_run / "sae" / "sae_weights.safetensors")["W_dec"]
    assert (
        start - Trainer(config(dist_cache, tmp_path / "fresh")).saes[0].sae.W_dec
    ).abs().max() > 1e-2
    # one writer: every metric line once, with the whole batch's numbers
    lines_one = [
        json.loads(line) for line in (one_rank_run / "metrics.jsonl").read_text().splitlines()
    ]
    lines_two = [
        json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in lines_two] == [r["step"] for r in lines_one] == [2, 4, 6, 8]
    for a, b in zip(lines_one, lines_two, strict=True):
        assert abs(a["mse"] - b["mse"]) <= 1e-3 * abs(a["mse"]) and a["l0"] == b["l0"]
    assert read_json(tmp_path / "two" / "run.json")["train"]["steps"] == 8


def test_a_run_resumes_on_a_different_number_of_ranks(dist_cache, one_rank_run, torchrun, tmp_path):
    # 1 rank trains 3 of 8 steps and checkpoints; 2 ranks finish the run
    first = Trainer(config(dist_cache, tmp_path / "one-then-two"))
    first.run_dir.mkdir(parents=True)
    first.init_b_dec()
    first.train_steps(3)
    assert load_checkpoint(first.run_dir)["step"] == 3
    write_json(first.run_dir / "train_config.json", first.cfg.to_dict())
    torchrun(["-m", "saescope", "train", "--resume", "one-then-two", "--no-progress"], cwd=tmp_path)
    assert_same_sae(one_rank_run, tmp_path / "one-then-two")
    # 2 ranks train 5 steps and checkpoint (stopped there); 1 rank finishes the run
    script = tmp_path / "partial.py"
    script.write_text(
        textwrap.dedent(f"""
        from saescope.distributed import init_from_env, shutdown
        from saescope.distributed.trainer import DistributedTrainer
        from saescope.fileio import write_json
        from saescope.train import TrainConfig

        init_from_env()
        cfg = TrainConfig().updated({{"run_dir": {str(tmp_path / "two-then-one")!r},
                                     "activations.cache": {str(dist_cache)!r}, **{SETTINGS!r}}})
        t = DistributedTrainer(cfg)
        t.run_dir.mkdir(parents=True, exist_ok=True)
        t.init_b_dec()
        t.train_steps(5)
        if t.is_writer:
            write_json(t.run_dir / "train_config.json", t.cfg.to_dict())
        shutdown()
    """)
    )
    torchrun([str(script)], cwd=tmp_path)
    assert load_checkpoint(tmp_path / "two-then-one")["step"] == 5
    train(config(dist_cache, tmp_path / "two-then-one"))
    assert_same_sae(one_rank_run, tmp_path / "two-then-one")


def test_feature_sharded_training_equals_unsharded(dist_cache, torchrun, tmp_path):
    """2 ranks each holding half the features train the SAE one process trains, AuxK included
    (latents count as dead after 512 tokens, so the dead-latent loss is live for most steps)."""
    dead_soon = {"dead_features.dead_after_tokens": 512, "dead_features.aux_k": 8}
    one = config(dist_cache, tmp_path / "one").updated(dead_soon)
    train(one)
    assert (
        max(
            json.loads(line)["aux_loss"]
            for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()
        )
        > 0
    )
    two = config(dist_cache, tmp_path / "sharded").updated(dead_soon)
    (tmp_path / "cfg.yaml").write_text("architecture:\n  name: topk\n")
    args = [*overrides(two), "dead_features.dead_after_tokens=512", "dead_features.aux_k=8"]
    torchrun(
        ["-m", "saescope", "train", "cfg.yaml", *args, "--shard-features", "--no-progress"],
        cwd=tmp_path,
    )
    assert_same_sae(tmp_path / "one", tmp_path / "sharded")
    sparsity = [
        load_file(tmp_path / d / "sae" / "sparsity.safetensors") for d in ("one", "sharded")
    ]
    for name in sparsity[0]:
        torch.testing.assert_close(sparsity[0][name], sparsity[1][name])


def test_two_ranks_share_the_model_work_of_live_activations(smollm2, torchrun, tmp_path):
    """Live from the model: each rank runs SmolLM2 on its half of every window's contexts, the halves
    are all-gathered, and the SAE trained is one process's (to float rounding of the model forward)."""
    live = {
        **SETTINGS,
        "corpus.context_length": 64,
        "activations.normalize": False,
        "model.batch_contexts": 8,
    }
    one = TrainConfig().updated({"run_dir": str(tmp_path / "one"), **live})
    train(one, model=smollm2)
    (tmp_path / "cfg.yaml").write_text(
        "architecture:\n  name: topk\ncorpus:\n  context_length: 64\n"
    )
    args = [
        f"run_dir={tmp_path / 'two'}",
        "activations.normalize=false",
        "model.batch_contexts=8",
        *[f"{k}={v}" for k, v in SETTINGS.items() if k != "logging.progress"],
    ]
    done = torchrun(["-m", "saescope", "train", "cfg.yaml", *args, "--no-progress"], cwd=tmp_path)
    assert "trained SAE(s)" in done.stdout
    assert_same_sae(tmp_path / "one", tmp_path / "two")
