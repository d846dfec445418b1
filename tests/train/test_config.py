"""TrainConfig: YAML + overrides, and a clear message for every bad field."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
import torch

from saescope.cli import main
from saescope.cli.config_docs import CONFIGS
from saescope.cli.train import config_from_args
from saescope.config.schema import nest_dotted, specs
from saescope.corpus import CorpusConfig
from saescope.errors import ConfigError, SaescopeError
from saescope.fileio import write_json
from saescope.train.config import TrainConfig, changed_fields, parse_overrides


def test_yaml_with_overrides(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(
        "architecture:\n  name: topk\n  k: 32\noptim:\n  training_tokens: 2M\n"
        "corpus:\n  source: builtin\n  context_length: 64\n"
    )
    cfg = TrainConfig.from_yaml(
        path,
        [
            "architecture.k=[16, 64]",
            "corpus.seed=3",
            "optim.lr=1e-3",
            "model.hooks=[blocks.3.hook_resid_post, blocks.6.hook_resid_post]",
        ],
    )
    assert cfg.optim.training_tokens == 2_000_000
    assert cfg.architecture.k == [16, 64]
    assert cfg.corpus == CorpusConfig(source="builtin", context_length=64, seed=3)
    assert cfg.optim.lr == 1e-3
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
        SaescopeError,
        match=r"unknown field 'expansion_factr'; did you mean 'sae.expansion_factor'\?",
    ):
        TrainConfig.from_dict({"expansion_factr": 8})
    with pytest.raises(
        SaescopeError,
        match=r"unknown field 'sae.expansion_factr'; did you mean 'sae.expansion_factor'",
    ):
        TrainConfig.from_dict({"sae": {"expansion_factr": 8}})
    path = tmp_path / "cfg.yaml"
    path.write_text("architecture:\n  name: standard\n  l1_coeficient: 3\n")
    with pytest.raises(SaescopeError, match="did you mean 'architecture.l1_coefficient'"):
        TrainConfig.from_yaml(path)


@pytest.mark.parametrize(
    ("values", "field", "accepted"),
    [
        ({"architecture.k": 0}, "architecture.k", "integer >= 1"),
        ({"architecture.k": [32, -1]}, "architecture.k", "integer >= 1"),
        (
            {"architecture.name": "standard", "architecture.l1_coefficient": -0.5},
            "architecture.l1_coefficient",
            "from 0 to 10000",
        ),
        (
            {"architecture.name": "standard", "architecture.l1_coefficient": 1e9},
            "architecture.l1_coefficient",
            "from 0 to 10000",
        ),
        (
            {"architecture.name": "jumprelu", "architecture.bandwidth": 2},
            "architecture.bandwidth",
            "from 1e-6 to 1",
        ),
        (
            {"architecture.name": "matryoshka_batchtopk", "architecture.group_fractions": [0.5]},
            "architecture.group_fractions",
            "summing to 1",
        ),
        ({"architecture.name": "topkk"}, "architecture.name", "did you mean 'topk'"),
        ({"optim.lr": 5.0}, "optim.lr", "learning rate"),
        ({"optim.batch_size": 0}, "optim.batch_size", "integer >= 1"),
        ({"optim.training_tokens": 100}, "optim.training_tokens", "at least batch_size"),
        (
            {"activations.buffer_tokens": 100},
            "activations.buffer_tokens",
            "at least optim.batch_size",
        ),
        ({"sae.b_dec_init": "median"}, "sae.b_dec_init", "geometric_median"),
        (
            {"schedule.lr_warmup_fraction": 0.5, "schedule.lr_decay_fraction": 0.6},
            "schedule.lr_decay_fraction",
            "at most",
        ),
        ({"model.hooks": []}, "model.hooks", "hook point name"),
        ({"logging.wandb": "yes"}, "logging.wandb", "true or false"),
        (
            {"sae.decoder_init_norm": 0.1},
            "sae.decoder_init_norm",
            "set sae.decoder_unit_norm: false",
        ),
        (
            {"sae.decoder_unit_norm": False, "sae.decoder_init_norm": 0},
            "sae.decoder_init_norm",
            "a positive number",
        ),
        ({"optim.max_grad_norm": -1}, "optim.max_grad_norm", "0 (no clipping)"),
    ],
)
def test_bad_values_name_the_dotted_field_the_value_and_what_is_accepted(values, field, accepted):
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict(nest_dotted(values))
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: got ")
    assert accepted in str(err.value)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"k": 0}, "architecture.k"),
        ({"architecture": "standard", "l1_coefficient": -0.5}, "architecture.l1_coefficient"),
        ({"architecture": "jumprelu", "jumprelu_bandwidth": 2}, "architecture.bandwidth"),
        ({"lr": 5.0}, "optim.lr"),
        ({"hooks": []}, "model.hooks"),
        ({"activation_cache": ""}, "activations.cache"),
    ],
)
def test_bad_values_in_flat_keys_name_the_field_they_were_read_into(values, field):
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict(values)
    assert err.value.field == field


def test_k_larger_than_d_sae_is_refused():
    cfg = TrainConfig(architecture={"name": "topk", "k": 10_000}, sae={"expansion_factor": 16})
    with pytest.raises(
        ConfigError, match=r"architecture.k: got 10000; expected an integer from 1 to d_sae \(9216"
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
    path.write_text("architecure:\n  name: topk\n")
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'architecture'" in err
    assert "Traceback" not in err


def test_max_grad_norm_clips_the_step(layer6_cache, tmp_path):
    """With max_grad_norm the gradients Adam sees have at most that global norm."""
    from saescope.train.trainer import Trainer

    cfg = TrainConfig(
        run_dir=str(tmp_path / "run"),
        activations={"cache": str(layer6_cache), "buffer_tokens": 4096},
        architecture={"name": "standard"},
        sae={"expansion_factor": 2, "b_dec_init_tokens": 256},
        optim={"batch_size": 256, "training_tokens": 256, "max_grad_norm": 1e-3},
        logging={"progress": False},
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
        {
            "optim": {"training_tokens": "2.5M", "lr": "1e-3"},
            "activations": {"buffer_tokens": "256k"},
            "dead_features": {"aux_k": 64},
        }
    )
    assert (cfg.optim.training_tokens, cfg.activations.buffer_tokens, cfg.optim.lr) == (
        2_500_000,
        256_000,
        1e-3,
    )
    with pytest.raises(ConfigError, match="optim.training_tokens: got 'lots'"):
        TrainConfig.from_dict({"optim": {"training_tokens": "lots"}})


def test_validate_only_checks():
    cfg = TrainConfig(architecture={"name": "topk", "k": [16, 64]}, corpus={"seed": 2})
    before = dataclasses.asdict(cfg)
    cfg.validate()
    assert dataclasses.asdict(cfg) == before


def test_resume_compares_an_older_runs_partial_corpus_with_its_defaults():
    """Runs saved before corpus was typed hold only the corpus keys their YAML gave."""
    current = TrainConfig(corpus={"context_length": 64}).to_dict()
    assert changed_fields({**current, "corpus": {"context_length": 64}}, current) == []
    assert changed_fields({**current, "corpus": {}}, current) == ["corpus.context_length"]


def test_resume_override_sets_one_corpus_key(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    saved = TrainConfig(run_dir="elsewhere", corpus={"context_length": 64}).to_dict()
    write_json(run / "train_config.json", saved)
    args = argparse.Namespace(
        resume=str(run), config="corpus.seed=3", overrides=["architecture.k=64"], no_progress=True
    )
    cfg = config_from_args(args)
    assert cfg.corpus == CorpusConfig(context_length=64, seed=3)
    assert (cfg.architecture.k, cfg.run_dir, cfg.logging.progress) == (64, str(run), False)
