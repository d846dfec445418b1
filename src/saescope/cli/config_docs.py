"""`saescope config-docs STAGE`: a markdown table of a stage's config fields (for the README)."""

from __future__ import annotations

import argparse

from saescope.activations.harvest import HarvestConfig
from saescope.analysis.config import AnalysisConfig
from saescope.cli.serve import ServeOptions
from saescope.config import Config, markdown_table
from saescope.corpus import CorpusConfig
from saescope.evals import EvalConfig

CONFIGS: dict[str, type[Config]] = {
    "corpus": CorpusConfig,
    "harvest": HarvestConfig,
    "eval": EvalConfig,
    "analyze": AnalysisConfig,
    "serve": ServeOptions,
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "config-docs",
        help="print a stage's config fields as a markdown table",
        description=__doc__,
    )
    p.add_argument("stage", choices=sorted(CONFIGS), help="the stage whose config to describe")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(markdown_table(CONFIGS[args.stage]))
    return 0
