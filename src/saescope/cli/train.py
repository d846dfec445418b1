"""`saescope train CONFIG.yaml [field=value ...]` and `saescope train --resume RUN`."""

from __future__ import annotations

import argparse
from pathlib import Path

from saescope.cli.common import run_stage
from saescope.config.schema import specs
from saescope.distributed.trainer import train_distributed
from saescope.errors import SaescopeError
from saescope.fileio import read_json
from saescope.train.config import TrainConfig, parse_overrides
from saescope.train.trainer import train


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train SAEs on a model's activations (resumable)",
        description="Train one or more SAEs from a YAML config, with field=value overrides. Run "
        "the same command again, or `saescope train --resume RUN_DIR`, to continue an "
        "interrupted run exactly.",
        epilog=fields_epilog(),
    )
    p.add_argument(
        "config",
        nargs="?",
        help="YAML config file (its fields: below, or saescope config-docs train)",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="FIELD=VALUE",
        help="override config fields, e.g. architecture.k=64 optim.training_tokens=4M "
        "corpus.context_length=256 (the flat k=64 of older configs works too)",
    )
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR with the config it was started with",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--shard-features",
        action="store_true",
        help="under torchrun: split each TopK SAE's features over the ranks (for SAEs too wide "
        "for one device)",
    )
    p.set_defaults(func=run)


def fields_epilog() -> str:
    """The config's fields for --help, from its declaration."""
    names = ", ".join(
        f"{spec.name}.*" if spec.is_section else spec.name for spec in specs(TrainConfig)
    )
    return (
        f"config fields (YAML keys and FIELD=VALUE overrides): {names}. "
        "Each with its default and accepted values: saescope config-docs train."
    )


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    if args.resume:
        saved = Path(args.resume) / "train_config.json"
        if not saved.exists():
            raise SaescopeError(f"{args.resume}: not a training run (no train_config.json)")
        values = read_json(saved)
        if args.config:  # `--resume RUN k=64`: argparse took the first override as the config
            args.overrides = [args.config, *args.overrides]
        # the run resumes in the folder given, wherever it was first trained; an older run's flat
        # config and flat overrides are read into the sections (corpus.seed=3 keeps the rest)
        overrides = parse_overrides(args.overrides)
        cfg = TrainConfig.from_layers(values, overrides, {"run_dir": str(args.resume)})
    elif args.config:
        cfg = TrainConfig.from_yaml(args.config, args.overrides)
    else:
        raise SaescopeError(
            "give a config file (saescope train CONFIG.yaml) or a run to resume (--resume RUN_DIR)"
        )
    if args.no_progress:
        return cfg.replace(logging=cfg.logging.replace(progress=False))
    return cfg


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    # under torchrun: data or features over the ranks
    run_dir = run_stage(
        lambda: train(cfg),
        lambda: train_distributed(cfg, shard_features=args.shard_features),
        force_distributed=args.shard_features,
    )
    if run_dir is None:
        return 0
    print(f"trained SAE(s) in {run_dir}: see sae*/ , metrics.jsonl, training_curves.png")
    return 0
