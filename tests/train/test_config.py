"""TrainConfig: YAML + overrides, and a clear message for every bad field."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
import torch

from saescope.cli import main
from saescope.cli.config_docs import CONFIGS
from saescope.cli.train import config_from_args
from saescope.config.schema import specs
from saescope.corpus import CorpusConfig
from saescope.errors import ConfigError, SaescopeError
from saescope.fileio import write_json
from saescope.train.config import TrainConfig, changed_fields, parse_overrides


def test_yaml_with_overrides(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(
        "architecture: topk\nk: 32\ntraining_tokens: 2M\ncorpus:\n  source: builtin\n  context_length: 64\n"
    )
    cfg = TrainConfig.from_yaml(
        path,
        [
            "k=[16, 64]",
            "corpus.seed=3",
            "lr=1e-3",
            "hooks=[blocks.3.hook_resid_post, blocks.6.hook_resid_post]",
        ],
    )
    assert cfg.training_tokens == 2_000_000
    assert cfg.k == [16, 64]
    assert cfg.corpus == CorpusConfig(source="builtin", context_length=64, seed=3)
    assert cfg.lr == 1e-3
    grid = cfg.sae_grid()
    assert [(g["hook"], g["k"]) for g in grid] == [
        ("blocks.3.hook_resid_post", 16),
        ("blocks.3.hook_resid_post", 64),
        ("blocks.6.hook_resid_post", 16),
        ("blocks.6.hook_resid_post", 64),
    ]
    assert len({g["label"] for g in grid}) == 4


def test_unknown_field_suggests_the_nearest_name(tmp_path):
    with pytest.raises(
        SaescopeError, match=r"unknown field 'expansion_factr'; did you mean 'expansion_factor'\?"
    ):
        TrainConfig.from_dict({"expansion_factr": 8})
    path = tmp_path / "cfg.yaml"
    path.write_text("l1_coeficient: 3\n")
    with pytest.raises(SaescopeError, match="did you mean 'l1_coefficient'"):
        TrainConfig.from_yaml(path)


@pytest.mark.parametrize(
    ("values", "field", "accepted"),
    [
        ({"k": 0}, "k", "integer >= 1"),
        ({"k": [32, -1]}, "k", "integer >= 1"),
        ({"architecture": "standard", "l1_coefficient": -0.5}, "l1_coefficient", "from 0 to 10000"),
        ({"architecture": "standard", "l1_coefficient": 1e9}, "l1_coefficient", "from 0 to 10000"),
        ({"architecture": "topkk"}, "architecture", "did you mean 'topk'"),
        ({"lr": 5.0}, "lr", "learning rate"),
        ({"batch_size": 0}, "batch_size", "integer >= 1"),
        ({"training_tokens": 100}, "training_tokens", "at least batch_size"),
        ({"b_dec_init": "median"}, "b_dec_init", "geometric_median"),
        ({"lr_warmup_fraction": 0.5, "lr_decay_fraction": 0.6}, "lr_decay_fraction", "at most"),
        ({"hooks": []}, "hooks", "hook point name"),
        ({"wandb": "yes"}, "wandb", "true or false"),
        ({"decoder_init_norm": 0.1}, "decoder_init_norm", "set decoder_unit_norm: false"),
        (
            {"decoder_unit_norm": False, "decoder_init_norm": 0},
            "decoder_init_norm",
            "a positive number",
        ),
        ({"max_grad_norm": -1}, "max_grad_norm", "0 (no clipping)"),
    ],
)
def test_bad_values_name_field_value_and_what_is_accepted(values, field, accepted):
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict(values)
    assert err.value.field == field
    assert accepted in str(err.value)


def test_k_larger_than_d_sae_is_refused():
    cfg = TrainConfig(k=10_000, expansion_factor=16)
    with pytest.raises(
        ConfigError, match=r"k: got 10000; expected an integer from 1 to d_sae \(9216"
    ):
        cfg.check_k_fits(576)


def test_overrides_parse_as_yaml():
    assert parse_overrides(["k=64", "wandb=true", "aux_k=null", "training_tokens=2_000_000"]) == {
        "k": 64,
        "wandb": True,
        "aux_k": None,
        "training_tokens": 2_000_000,
    }
    with pytest.raises(SaescopeError, match="expected field=value"):
        parse_overrides(["k64"])


def test_cli_prints_config_errors_without_traceback(tmp_path, capsys):
    path = tmp_path / "cfg.yaml"
    path.write_text("architecure: topk\n")
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'architecture'" in err
    assert "Traceback" not in err


def test_max_grad_norm_clips_the_step(layer6_cache, tmp_path):
    """With max_grad_norm the gradients Adam sees have at most that global norm."""
    from saescope.train.trainer import Trainer

    cfg = TrainConfig(
        run_dir=str(tmp_path / "run"),
        activation_cache=str(layer6_cache),
        architecture="standard",
        expansion_factor=2,
        batch_size=256,
        training_tokens=256,
        buffer_tokens=4096,
        b_dec_init_tokens=256,
        progress=False,
        max_grad_norm=1e-3,
    )
    trainer = Trainer(cfg)
    trainer.init_b_dec()
    state = trainer.saes[0]
    x = next(iter(trainer.store))[state.hook]
    trainer.train_one(state, x)
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in state.sae.parameters()]))
    assert float(norm) == pytest.approx(1e-3, rel=1e-4)  # clipped: unclipped it is far larger


def test_every_field_is_declared_with_help_and_documented(capsys):
    """The one declaration feeds `saescope config-docs train`: every field, sections dotted."""
    assert all(spec.meta.get("help") for spec in specs(TrainConfig))
    assert CONFIGS["train"] is TrainConfig
    assert main(["config-docs", "train"]) == 0
    table = capsys.readouterr().out
    for name in TrainConfig.field_names():
        assert f"`{name}`" in table or f"`{name}." in table
    assert "| `corpus.context_length` | int | `128` |" in table
    assert "one of mean, geometric_median, zeros" in table


def test_corpus_is_a_typed_section():
    cfg = TrainConfig.from_dict({"corpus": {"source": "builtin", "context_length": 64}})
    assert isinstance(cfg.corpus, CorpusConfig)
    assert TrainConfig().corpus == CorpusConfig()
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict({"corpus": {"context_length": 1}})
    assert err.value.field == "corpus.context_length"
    with pytest.raises(SaescopeError, match="did you mean 'corpus.context_length'"):
        TrainConfig.from_dict({"corpus": {"context_lenght": 64}})


def test_counts_and_numbers_written_as_text_are_read():
    cfg = TrainConfig.from_dict(
        {"training_tokens": "2.5M", "buffer_tokens": "256k", "lr": "1e-3", "aux_k": 64}
    )
    assert (cfg.training_tokens, cfg.buffer_tokens, cfg.lr) == (2_500_000, 256_000, 1e-3)
    with pytest.raises(ConfigError, match="training_tokens: got 'lots'"):
        TrainConfig.from_dict({"training_tokens": "lots"})


def test_validate_only_checks():
    cfg = TrainConfig(k=[16, 64], corpus={"seed": 2})
    before = dataclasses.asdict(cfg)
    cfg.validate()
    assert dataclasses.asdict(cfg) == before


def test_resume_compares_an_older_runs_partial_corpus_with_its_defaults():
    """Runs saved before corpus was typed hold only the corpus keys their YAML gave."""
    current = TrainConfig(corpus={"context_length": 64}).to_dict()
    assert changed_fields({**current, "corpus": {"context_length": 64}}, current) == []
    assert changed_fields({**current, "corpus": {}}, current) == ["corpus"]


def test_resume_override_sets_one_corpus_key(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    saved = TrainConfig(run_dir="elsewhere", corpus={"context_length": 64}).to_dict()
    write_json(run / "train_config.json", saved)
    args = argparse.Namespace(
        resume=str(run), config="corpus.seed=3", overrides=["k=64"], no_progress=True
    )
    cfg = config_from_args(args)
    assert cfg.corpus == CorpusConfig(context_length=64, seed=3)
    assert (cfg.k, cfg.run_dir, cfg.progress) == (64, str(run), False)
