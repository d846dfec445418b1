"""`saescope score RUN_OR_STORE`: score the current explanations of the chosen features
(detection and fuzzing by default; --scorers adds simulation), into the feature store.

Features without a current explanation are skipped (and named); explanations that already
have every asked-for score are skipped unless --redo. Requests are cached as for explain.
"""

from __future__ import annotations

import argparse

from saescope.autointerp.config import make_backend
from saescope.autointerp.into_store import score_into_store
from saescope.cli.explain import (
    add_target_arguments,
    choose_features,
    config_from,
    open_target,
    print_summary,
)
from saescope.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "score", help="score the current explanations of features", description=__doc__
    )
    add_target_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    if not cfg.scorers:
        raise ConfigError(
            "--scorers", cfg.scorers, "at least one of detection, fuzzing, simulation"
        )
    backend = make_backend(cfg.backend)
    target = open_target(args)
    with target.store:
        features = choose_features(target, args)
        tally = score_into_store(
            target.store, target.sae_id, features, backend, cfg, redo=args.redo,
            cache_dir=cfg.cache_dir or target.default_cache_dir, progress=not args.no_progress,
        )  # fmt: skip
        print_summary(target, features, tally, cfg, scored=True)
    return 0
