"""Configs written before TrainConfig had sections: flat YAML files, flat key=value overrides and
the flat train_config.json of older runs read into the same nested config, with one line said."""

from __future__ import annotations

import argparse
import logging

import pytest

from saescope.cli.train import config_from_args
from saescope.errors import SaescopeError
from saescope.fileio import read_json, write_json
from saescope.train import config as train_config
from saescope.train.config import TrainConfig, changed_fields

# the README's tutorial config, as it was written before the sections
FLAT_YAML = """\
run_dir: runs/tut
activation_cache: runs/tut/activations
architecture: topk        # standard, topk, batchtopk, jumprelu, gated, matryoshka_batchtopk
expansion_factor: 8       # a list, e.g. [8, 16], trains several SAEs in one pass
k: 32
training_tokens: 200k
lr: 1e-3
"""

NESTED_YAML = """\
run_dir: runs/tut
activations:
  cache: runs/tut/activations
sae:
  expansion_factor: 8
architecture:
  name: topk
  k: 32
optim:
  training_tokens: 200k
  lr: 1e-3
"""

# train_config.json as saescope wrote it before the sections: every field flat, every
# architecture's knobs side by side (a jumprelu run, so k and l1_coefficient were unused)
SAVED_FLAT_RUN = {
    "run_dir": "runs/old",
    "model": "smollm2",
    "hooks": ["blocks.3.hook_resid_post", "blocks.6.hook_resid_post"],
    "activation_cache": None,
    "corpus": {"context_length": 64},  # older still: only the keys the YAML gave
    "model_batch_contexts": 4,
    "architecture": "jumprelu",
    "expansion_factor": 4,
    "k": 32,
    "l1_coefficient": 5.0,
    "jumprelu_l0_coefficient": 0.5,
    "jumprelu_bandwidth": 0.002,
    "matryoshka_fractions": [0.0625, 0.1875, 0.75],
    "training_tokens": 100_000,
    "batch_size": 1024,
    "lr": 0.0004,
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "max_grad_norm": 1.0,
    "lr_warmup_fraction": 0.01,
    "lr_decay_fraction": 0.2,
    "l1_warmup_fraction": 0.1,
    "decoder_unit_norm": True,
    "decoder_init_norm": 1.0,
    "b_dec_init": "mean",
    "b_dec_init_tokens": 4096,
    "init_encoder_as_decoder_t": True,
    "normalize_activations": True,
    "buffer_tokens": 8192,
    "dead_after_tokens": 500_000,
    "aux_k_coefficient": 0.03125,
    "aux_k": None,
    "resample_every_tokens": 0,
    "checkpoint_every_tokens": 50_000,
    "log_every_steps": 5,
    "seed": 3,
    "device": "cpu",
    "progress": True,
    "wandb": False,
    "wandb_project": "saescope",
}

THE_SAME_RUN_NESTED = {
    "run_dir": "runs/old",
    "seed": 3,
    "model": {
        "name": "smollm2",
        "hooks": ["blocks.3.hook_resid_post", "blocks.6.hook_resid_post"],
        "batch_contexts": 4,
    },
    "corpus": {"context_length": 64},
    "activations": {"buffer_tokens": 8192},
    "sae": {"expansion_factor": 4, "b_dec_init": "mean", "b_dec_init_tokens": 4096},
    "architecture": {"name": "jumprelu", "l0_coefficient": 0.5, "bandwidth": 0.002},
    "optim": {
        "training_tokens": 100_000,
        "batch_size": 1024,
        "lr": 0.0004,
        "max_grad_norm": 1.0,
    },
    "schedule": {"l1_warmup_fraction": 0.1},
    "dead_features": {"dead_after_tokens": 500_000},
    "logging": {"checkpoint_every_tokens": 50_000, "log_every_steps": 5},
}


def test_a_flat_yaml_reads_into_the_nested_config(tmp_path):
    flat, nested = tmp_path / "flat.yaml", tmp_path / "nested.yaml"
    flat.write_text(FLAT_YAML)
    nested.write_text(NESTED_YAML)
    cfg = TrainConfig.from_yaml(flat)
    assert cfg == TrainConfig.from_yaml(nested)
    assert (cfg.activations.cache, cfg.sae.expansion_factor, cfg.optim.lr) == (
        "runs/tut/activations",
        8,
        1e-3,
    )
    assert (cfg.optim.training_tokens, cfg.architecture.k) == (200_000, 32)


def test_flat_overrides_apply_over_flat_and_nested_files(tmp_path):
    """The README's `saescope train tut.yaml k=64 run_dir=runs/tut-k64`, on either form."""
    flat, nested = tmp_path / "flat.yaml", tmp_path / "nested.yaml"
    flat.write_text(FLAT_YAML)
    nested.write_text(NESTED_YAML)
    overrides = ["k=64", "run_dir=runs/tut-k64", "batch_size=32768", "training_tokens=1M"]
    from_flat = TrainConfig.from_yaml(flat, overrides)
    assert from_flat == TrainConfig.from_yaml(nested, overrides)
    assert (from_flat.architecture.k, from_flat.run_dir, from_flat.optim.batch_size) == (
        64,
        "runs/tut-k64",
        32768,
    )
    # a nested override over a flat file, and a switch of architecture over either
    jumprelu = ["architecture.name=jumprelu", "architecture.bandwidth=0.01"]
    assert TrainConfig.from_yaml(flat, jumprelu) == TrainConfig.from_yaml(nested, jumprelu)
    assert TrainConfig.from_yaml(flat, jumprelu).architecture.bandwidth == 0.01
    assert TrainConfig.from_yaml(flat, ["architecture=standard"]).architecture.name == "standard"
    # a flat override of an architecture's setting, over a nested file naming that architecture
    nested.write_text(NESTED_YAML.replace("name: topk\n  k: 32", "name: jumprelu"))
    cfg = TrainConfig.from_yaml(nested, ["jumprelu_bandwidth=0.01", "k=64"])
    assert cfg.architecture.name == "jumprelu" and cfg.architecture.bandwidth == 0.01


def test_a_saved_flat_run_config_loads_into_the_same_nested_config(tmp_path):
    assert TrainConfig.from_dict(SAVED_FLAT_RUN) == TrainConfig.from_dict(THE_SAME_RUN_NESTED)
    # `saescope train --resume` reads it and writes the nested form back
    run = tmp_path / "old"
    run.mkdir()
    write_json(run / "train_config.json", SAVED_FLAT_RUN)
    args = argparse.Namespace(resume=str(run), config="lr=0.0004", overrides=[], no_progress=False)
    cfg = config_from_args(args)
    assert cfg == TrainConfig.from_dict({**THE_SAME_RUN_NESTED, "run_dir": str(run)})
    write_json(run / "train_config.json", cfg.to_dict())
    saved = read_json(run / "train_config.json")
    assert set(saved) == set(TrainConfig.field_names())
    assert saved["architecture"] == {"name": "jumprelu", "l0_coefficient": 0.5, "bandwidth": 0.002}


def test_a_resume_compares_a_flat_saved_config_with_the_nested_one():
    """The checkpoint of an older run holds the flat config: the same run still resumes, and a
    changed field is named by its dotted path."""
    cfg = TrainConfig.from_dict(THE_SAME_RUN_NESTED)
    assert changed_fields(SAVED_FLAT_RUN, cfg.to_dict()) == []
    changed = cfg.updated({"architecture.bandwidth": 0.004, "optim.lr": 1e-3})
    assert changed_fields(SAVED_FLAT_RUN, changed.to_dict()) == [
        "architecture.bandwidth",
        "optim.lr",
    ]


def test_flat_keys_are_announced_once(monkeypatch, caplog, tmp_path):
    monkeypatch.setattr(train_config, "_warned", False)
    path = tmp_path / "flat.yaml"
    path.write_text(FLAT_YAML)
    with caplog.at_level(logging.WARNING, logger=train_config.__name__):
        TrainConfig.from_yaml(path, ["k=64"])
        TrainConfig.from_dict(SAVED_FLAT_RUN)
        TrainConfig.from_yaml(path)
    lines = [r.getMessage() for r in caplog.records if r.name == train_config.__name__]
    assert len(lines) == 1 and "sections" in lines[0], lines
    monkeypatch.setattr(train_config, "_warned", False)
    caplog.clear()
    TrainConfig.from_dict(THE_SAME_RUN_NESTED)
    assert not [r for r in caplog.records if r.name == train_config.__name__]


def test_a_misspelt_flat_key_gets_its_dotted_path_suggested():
    with pytest.raises(SaescopeError, match=r"'batch_sise'; did you mean 'optim.batch_size'\?"):
        TrainConfig.from_dict({"batch_sise": 64})
    with pytest.raises(
        SaescopeError, match=r"'jumprelu_bandwith'; did you mean 'architecture.bandwidth'\?"
    ):
        TrainConfig.from_dict({"architecture": "jumprelu", "jumprelu_bandwith": 0.01})
