"""`saescope eval RUN_OR_SAE`: evaluate a training run's SAEs, or any SAE load_sae reads."""

from __future__ import annotations

import argparse

from saescope.cli_args import add_corpus_arguments, corpus_config_from_args, parse_count
from saescope.evals.evaluate import evaluate_path, format_table


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
    p.add_argument("--hook", default=None, help="hook point (default: the SAE's hook_name)")
    p.add_argument(
        "--tokens", type=parse_count, default=8192, help="tokens to evaluate on (default: 8192)"
    )
    p.add_argument(
        "--batch-contexts",
        type=int,
        default=8,
        help="contexts per forward pass (default: %(default)s)",
    )
    p.add_argument(
        "--skip-contexts",
        type=int,
        default=0,
        help="contexts of the corpus to skip first, e.g. those trained on",
    )
    p.add_argument(
        "--no-ce",
        action="store_true",
        help="reconstruction metrics only (one partial forward pass)",
    )
    p.add_argument("--out", default=None, help="write results here instead of next to the SAE")
    add_corpus_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model = None
    if args.model:
        from saescope.models import load_model  # noqa: PLC0415

        model = load_model(args.model)
    results = evaluate_path(
        args.path,
        model=model,
        corpus=corpus_config_from_args(args),
        n_tokens=args.tokens,
        batch_contexts=args.batch_contexts,
        skip_contexts=args.skip_contexts,
        hook=args.hook,
        with_ce=not args.no_ce,
        out_dir=args.out,
    )
    print(format_table(results))
    return 0
