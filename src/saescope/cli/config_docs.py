"""`saescope config-docs STAGE`: a markdown table of a stage's config fields; `all` writes the
whole reference, docs/config.md (a test checks that file is current)."""

from __future__ import annotations

import argparse

from saescope.activations.harvest import HarvestConfig
from saescope.analysis.config import AnalysisConfig
from saescope.autointerp.config import AutoInterpConfig
from saescope.cli.serve import ServeOptions
from saescope.config import Config, markdown_table
from saescope.corpus import CorpusConfig
from saescope.evals import EvalConfig
from saescope.train import TrainConfig

CONFIGS: dict[str, type[Config]] = {
    "corpus": CorpusConfig,
    "harvest": HarvestConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "analyze": AnalysisConfig,
    "explain": AutoInterpConfig,
    "serve": ServeOptions,
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "config-docs",
        help="print a stage's config fields as a markdown table",
        description=__doc__,
    )
    p.add_argument(
        "stage", choices=[*sorted(CONFIGS), "all"], help="the stage whose config to describe"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    text = reference() if args.stage == "all" else markdown_table(CONFIGS[args.stage])
    print(text.rstrip("\n"))
    return 0


def reference() -> str:
    """Every stage's table under its own heading: the text of docs/config.md."""
    parts = [
        "# Config reference\n\n"
        "Generated from the config schema by `saescope config-docs all > docs/config.md`; "
        "each field is a YAML key, a `field=value` override (dotted for sections, e.g. "
        "`corpus.context_length=256`) and, where a flag is shown, a command-line flag.\n"
    ]
    for stage, config in CONFIGS.items():
        parts.append(f"\n## `saescope {stage}`\n\n{markdown_table(config).rstrip()}\n")
    return "".join(parts)
