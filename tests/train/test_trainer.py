"""The trainer on real SmolLM2 activations: it learns, resumes exactly after SIGKILL, refuses bad runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from saescope.activations import ActivationStore
from saescope.errors import SaescopeError
from saescope.sae import build_sae, load_sae
from saescope.train import TrainConfig, train
from saescope.train.checkpoint import CHECKPOINT_FILE

HOOK = "blocks.6.hook_resid_post"


def small_config(run_dir: Path, cache: Path, changes: dict | None = None) -> TrainConfig:
    """A short run; changes: {"optim.lr": 1e-3, ...}."""
    cfg = TrainConfig(
        run_dir=str(run_dir),
        activations={"cache": str(cache), "buffer_tokens": 8192},
        sae={"expansion_factor": 4, "b_dec_init_tokens": 2048},
        architecture={"name": "topk", "k": 32},
        optim={"batch_size": 512, "training_tokens": 36 * 512, "lr": 3e-3},
        logging={"checkpoint_every_tokens": 4 * 512, "log_every_steps": 2, "progress": False},
    )
    return cfg.updated(changes or {})


def metrics(run_dir: Path, kind: str = "train") -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["kind"] == kind]


@torch.no_grad()
def fvu(sae, x: torch.Tensor) -> float:
    return float((sae(x) - x).pow(2).sum() / (x - x.mean(0)).pow(2).sum())


def test_short_run_learns_and_writes_its_outputs(layer6_cache, tmp_path):
    run_dir = train(small_config(tmp_path / "run", layer6_cache))
    rows = metrics(run_dir)
    assert rows[0]["fvu"] > 0.5
    assert rows[-1]["fvu"] < 0.35
    assert rows[-1]["step"] == 36 and all(r["l0"] <= 32 for r in rows)
    assert (run_dir / "training_curves.png").stat().st_size > 10_000
    assert json.loads((run_dir / "run.json").read_text())["train"]["tokens"] == 36 * 512

    # the saved SAE takes raw activations (the store's scaling is folded in) and computes what the
    # trained weights computed on the normalised ones
    sae = load_sae(run_dir / "sae")
    assert (sae.cfg.architecture, sae.cfg.hook_name, sae.d_sae, sae.cfg.k) == (
        "topk",
        HOOK,
        2304,
        32,
    )
    store = ActivationStore.from_cache(layer6_cache, batch_size=2048, buffer_tokens=8192)
    normalised = next(iter(store))[HOOK]
    raw = normalised / store.scaling_factors[HOOK]
    trained = build_sae(sae.cfg)
    trained.load_state_dict(
        torch.load(run_dir / CHECKPOINT_FILE, weights_only=False)["saes"][f"{HOOK}-x4-k32"]["sae"]
    )
    assert fvu(sae, raw) == pytest.approx(fvu(trained, normalised), abs=1e-5)
    assert fvu(sae, raw) < 0.45
    assert torch.allclose(trained.W_dec.norm(dim=-1), torch.ones(2304), atol=1e-5)
    sparsity = load_file(run_dir / "sae" / "sparsity.safetensors")["sparsity"]
    assert sparsity.shape == (2304,) and float(sparsity.max()) <= 0


def test_several_saes_share_one_pass(layer6_cache, tmp_path):
    cfg = small_config(
        tmp_path / "run",
        layer6_cache,
        {
            "architecture.k": [8, 32],
            "sae.expansion_factor": [2, 4],
            "optim.training_tokens": 8 * 512,
        },
    )
    run_dir = train(cfg)
    folders = sorted(p.name for p in (run_dir / "saes").iterdir())
    assert folders == sorted(f"{HOOK}-x{f}-k{k}" for f in (2, 4) for k in (8, 32))
    last = {r["sae"]: r for r in metrics(run_dir) if r["step"] == 8}
    assert last[f"{HOOK}-x2-k8"]["l0"] <= 8 < last[f"{HOOK}-x4-k32"]["l0"]
    assert load_sae(run_dir / "saes" / f"{HOOK}-x4-k8").d_sae == 2304


def test_l1_sae_gets_sparser_as_the_penalty_warms_up(layer6_cache, tmp_path):
    cfg = small_config(
        tmp_path / "run",
        layer6_cache,
        {
            "architecture.name": "standard",
            "architecture.l1_coefficient": 5.0,
            "optim.lr": 1e-3,
            "schedule.l1_warmup_fraction": 0.25,
        },
    )
    rows = metrics(train(cfg))
    assert rows[-1]["l0"] < rows[0]["l0"] / 2, [(r["l0"], r["fvu"]) for r in rows]
    late_fvu = sum(r["fvu"] for r in rows[-4:]) / 4  # per-batch FVU of 512 tokens is noisy
    assert late_fvu < 0.85, [(r["l0"], r["fvu"]) for r in rows]


def run_cli(args: list[str]) -> subprocess.Popen:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
    }  # the same thread count in both runs: same float order
    return subprocess.Popen(
        [sys.executable, "-m", "saescope.cli", "train", *args],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_resume_after_sigkill_equals_an_uninterrupted_run(layer6_cache, tmp_path):
    values = small_config(
        tmp_path / "x", layer6_cache, {"optim.training_tokens": 32 * 512, "optim.lr": 1e-3}
    ).to_dict()
    for name in ("killed", "straight"):
        (tmp_path / f"{name}.yaml").write_text(
            yaml.safe_dump({**values, "run_dir": str(tmp_path / name)})
        )

    straight = run_cli([str(tmp_path / "straight.yaml")])
    killed = run_cli([str(tmp_path / "killed.yaml")])
    checkpoint = tmp_path / "killed" / "checkpoints" / "checkpoint.pt"
    deadline = time.time() + 120
    while not checkpoint.exists() and killed.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "killed" / "sae").exists()
    steps_before = torch.load(checkpoint, weights_only=False)["step"]
    assert 0 < steps_before < 32

    resumed = run_cli([str(tmp_path / "killed.yaml")])
    assert resumed.wait() == 0, resumed.stderr.read()
    assert straight.wait() == 0, straight.stderr.read()

    a = load_file(tmp_path / "killed" / "sae" / "sae_weights.safetensors")
    b = load_file(tmp_path / "straight" / "sae" / "sae_weights.safetensors")
    for name in b:
        assert torch.equal(a[name], b[name]), f"{name} differs after resume"
    assert [r["step"] for r in metrics(tmp_path / "killed")] == [
        r["step"] for r in metrics(tmp_path / "straight")
    ]


def test_resume_with_a_changed_config_is_refused(layer6_cache, tmp_path):
    cfg = small_config(tmp_path / "run", layer6_cache, {"optim.training_tokens": 4 * 512})
    train(cfg)
    with pytest.raises(
        SaescopeError, match=r"different config \(architecture.k: 32 -> 16\).*--resume"
    ):
        train(cfg.updated({"architecture.k": 16}))
    # harmless changes: resumes (already done)
    train(cfg.updated({"logging.progress": True, "logging.log_every_steps": 1}))


def test_hook_missing_from_the_model_or_cache(layer6_cache, smollm2, tmp_path):
    with pytest.raises(
        SaescopeError,
        match=r"blocks\.3\.hook_resid_post not in the activation cache .*holds blocks\.6",
    ):
        train(
            small_config(tmp_path / "a", layer6_cache, {"model.hooks": "blocks.3.hook_resid_post"})
        )
    cfg = small_config(
        tmp_path / "b",
        layer6_cache,
        {"model.hooks": "blocks.40.hook_resid_post", "activations.cache": None},
    )
    with pytest.raises(SaescopeError, match=r"'blocks\.40\.hook_resid_post' is not a hook point"):
        train(cfg, model=smollm2)


def test_k_larger_than_the_dictionary_is_refused(layer6_cache, tmp_path):
    with pytest.raises(
        SaescopeError, match=r"architecture.k: got 5000; expected an integer from 1 to d_sae \(2304"
    ):
        train(small_config(tmp_path / "run", layer6_cache, {"architecture.k": 5000}))


def test_cli_resume_uses_the_saved_config_and_refuses_changes(layer6_cache, tmp_path, capsys):
    from saescope.cli import main

    cfg = small_config(tmp_path / "run", layer6_cache, {"optim.training_tokens": 4 * 512})
    train(cfg)
    assert main(["train", "--resume", str(tmp_path / "run"), "--no-progress"]) == 0
    assert main(["train", "--resume", str(tmp_path / "run"), "architecture.k=16"]) == 2
    assert "different config (architecture.k: 32 -> 16)" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "not a training run" in capsys.readouterr().err
