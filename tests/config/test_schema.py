"""The config schema: one declaration gives the checks, overrides, CLI flags and docs."""

from __future__ import annotations

import argparse
import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from saescope.analysis import AnalysisConfig
from saescope.config import (
    REQUIRED,
    Config,
    add_config_arguments,
    config_from_args,
    markdown_table,
    parse_count,
    section,
    setting,
    validate_flags,
)
from saescope.corpus import CorpusConfig
from saescope.errors import ConfigError, SaescopeError


@dataclass
class Inner(Config):
    width: int = setting(4, "width of a thing", low=1, high=64)


@dataclass
class Outer(Config):
    out: str = setting(REQUIRED, "where to write")
    inner: Inner = section(Inner, "the inner part")
    n_tokens: int = setting(1000, "tokens", low=1, count=True, flag="--tokens")
    lr: float = setting(1e-3, "learning rate", low=1e-8, high=1.0)
    mode: str = setting("fast", "how", choices=("fast", "exact"))
    window: tuple[int, int] = setting((2, 1), "before,after", low=0)
    names: list[str] = setting(["a"], "names", flag="--name")
    bos: bool = setting(True, "keep BOS", flag="--no-bos")


def test_counts_and_float_strings_are_normalised_at_construction():
    cfg = Outer.from_dict({"out": "x", "n_tokens": "2.5M", "lr": "1e-4", "window": [3, 0]})
    assert (cfg.n_tokens, cfg.lr, cfg.window) == (2_500_000, 1e-4, (3, 0))
    assert parse_count("100k") == 100_000 and parse_count("1e6") == 1_000_000


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"n_tokens": 0}, "n_tokens: got 0; expected an integer >= 1."),
        ({"lr": 2.0}, "lr: got 2.0; expected a number from 1e-08 to 1."),
        ({"mode": "fsat"}, "mode: got 'fsat'; expected one of fast, exact (did you mean 'fast'?)."),
        ({"window": (1, -1)}, "window: got (1, -1); expected 2 integers >= 0."),
        ({"bos": "yes"}, "bos: got 'yes'; expected true or false."),
        ({"inner": {"width": 65}}, "inner.width: got 65; expected an integer from 1 to 64."),
        ({"out": ""}, "out: got ''; expected a non-empty string."),
    ],
)
def test_a_bad_value_names_the_field_the_value_and_what_is_accepted(values, message):
    cfg = Outer.from_dict({"out": "x", **values})
    with pytest.raises(ConfigError) as err:
        cfg.validate()
    assert str(err.value) == message


def test_validate_does_not_change_the_config():
    cfg = AnalysisConfig(top_k=100)
    assert cfg.n_exact_top == 100  # normalised when built
    before = cfg.to_dict()
    cfg.validate()
    assert cfg.to_dict() == before


def test_unknown_fields_get_the_nearest_name_even_in_sections():
    with pytest.raises(SaescopeError, match=r"unknown field 'n_tokns'; did you mean 'n_tokens'\?"):
        Outer.from_dict({"out": "x", "n_tokns": 5})
    with pytest.raises(
        SaescopeError, match=r"unknown field 'inner.widht'; did you mean 'inner.width'"
    ):
        Outer.from_dict({"out": "x", "inner": {"widht": 5}})


def test_yaml_with_dotted_overrides(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("out: runs/a\ninner:\n  width: 8\nn_tokens: 4k\n")
    cfg = Outer.from_yaml(path, ["inner.width=16", "mode=exact"])
    assert (cfg.out, cfg.inner.width, cfg.n_tokens, cfg.mode) == ("runs/a", 16, 4000, "exact")
    assert cfg.with_overrides(["n_tokens=1M"]).n_tokens == 1_000_000


def test_flags_round_trip_into_the_config():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, Outer)
    argv = ["--out", "o", "--tokens", "2k", "--width", "9", "--window", "5,6", "--no-bos"]
    args = parser.parse_args([*argv, "--name", "p", "--name", "q"])
    cfg = config_from_args(Outer, args)
    assert cfg == Outer(
        out="o", inner=Inner(9), n_tokens=2000, window=(5, 6), names=["p", "q"], bos=False
    )
    assert config_from_args(Outer, parser.parse_args(["--out", "o"])) == Outer(out="o")
    with pytest.raises(ConfigError, match="--window"):
        config_from_args(Outer, parser.parse_args(["--out", "o", "--window", "5"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["--tokens", "lots"])
    too_wide = config_from_args(Outer, parser.parse_args(["--out", "o", "--width", "65"]))
    with pytest.raises(ConfigError, match=r"^--width: got 65; expected an integer from 1 to 64"):
        validate_flags(too_wide)


def test_markdown_table_lists_every_field_with_its_flag():
    table = markdown_table(Outer).splitlines()
    assert table[0].startswith("| field |")
    assert len(table) == 2 + 8
    assert "| `inner.width` | int | `4` | an integer from 1 to 64 | `--width` |" in table[3]
    assert "| `out` | str | required |" in table[2]


def test_corpus_config_as_a_section_keeps_its_messages():
    with pytest.raises(ConfigError) as err:
        AnalysisConfig(corpus=CorpusConfig(context_length=1)).validate()
    assert err.value.field == "corpus.context_length" and ">= 2" in str(err.value)


def test_no_stage_imports_the_command_layer():
    """saescope.cli depends on the stages; a stage importing it would make cycles again."""
    root = Path(__import__("saescope").__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if path.is_relative_to(root / "cli") or path == root / "__main__.py":
            continue  # the command layer itself, and `python -m saescope`
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == "saescope.cli" or n.startswith("saescope.cli.") for n in names):
                offenders.append(str(path.relative_to(root)))
    assert offenders == []
