"""`saescope harvest`: write a model's activations at hook points to an on-disk cache."""

from __future__ import annotations

import argparse

from saescope.activations.harvest import HarvestConfig, harvest
from saescope.cli.common import run_stage
from saescope.config import add_config_arguments, config_from_args
from saescope.distributed.harvest import harvest_distributed


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "harvest",
        help="write activations at hook points to an on-disk cache (resumable)",
        description="Run the model over a corpus and write the activations at one or more hook points "
        "to a sharded cache. Run the same command again to resume an interrupted harvest.",
    )
    add_config_arguments(p, HarvestConfig)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(HarvestConfig, args)
    # under torchrun: each rank writes its own shards of the one cache
    cache = run_stage(lambda: harvest(cfg), lambda: harvest_distributed(cfg))
    if cache is None:
        return 0
    m = cache.manifest
    print(
        f"{m.n_tokens:,} tokens of {', '.join(f'{h} (d={d})' for h, d in m.hooks.items())} in {cache.directory}"
    )
    return 0
