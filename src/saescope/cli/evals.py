"""`saescope eval RUN_OR_SAE`: evaluate a training run's SAEs, or any SAE load_sae reads."""

from __future__ import annotations

import argparse

from saescope.config import add_config_arguments, config_from_args, validate_flags
from saescope.evals.config import EvalConfig
from saescope.evals.evaluate import evaluate_path, format_table
from saescope.models import load_model


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate SAEs: L0, FVU, CE loss recovered, KL, dead/dense features",
        description="Evaluate the SAE(s) of a training run, or any SAE folder/file load_sae reads, on its "
        "model and hook point. Writes eval.json and feature-density files next to each SAE.",
    )
    p.add_argument("path", help="a run directory, an SAE folder or file, or hf:ORG/NAME/PATH")
    p.add_argument(
        "--model", default=None, help="model spec (default: the SAE's model_name, else smollm2)"
    )
    add_config_arguments(p, EvalConfig)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(EvalConfig, args)
    validate_flags(cfg)
    model = load_model(args.model) if args.model else None
    print(format_table(evaluate_path(args.path, model=model, **cfg.as_kwargs())))
    return 0
