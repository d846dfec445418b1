"""`saescope demo`: the whole pipeline on the bundled model and corpus (saescope.demo.run_demo)."""

from __future__ import annotations

import argparse
from pathlib import Path

from saescope.config import parse_count
from saescope.demo import N_EXPLAINED, run_demo


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on the bundled model and corpus",
        description="Harvest activations from the bundled SmolLM2-135M-Instruct on the built-in corpus, "
        "train a TopK SAE, evaluate it, analyse every feature, explain and score a few of them with the "
        "bundled model, write dashboards and serve the viewer. "
        "Re-running resumes and reuses what is already there.",
    )
    p.add_argument("--out", default="runs/demo", help="run directory (default: %(default)s)")
    p.add_argument(
        "--tokens",
        type=parse_count,
        default=400_000,
        help="tokens to harvest and train on (default: 400k)",
    )
    p.add_argument(
        "--analyze-tokens",
        type=parse_count,
        default=32_768,
        help="tokens to analyse (default: 32k)",
    )
    p.add_argument(
        "--eval-tokens", type=parse_count, default=2048, help="tokens for the evals (default: 2048)"
    )
    p.add_argument(
        "--explain",
        type=int,
        default=N_EXPLAINED,
        metavar="N",
        help="features to explain and score with the bundled model (0: none; default: %(default)s)",
    )
    p.add_argument("--no-serve", action="store_true", help="stop after writing the dashboards")
    p.add_argument("--port", type=int, default=8000, help="viewer port (default: %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    run_demo(
        Path(args.out),
        n_tokens=args.tokens,
        analyze_tokens=args.analyze_tokens,
        eval_tokens=args.eval_tokens,
        serve=not args.no_serve,
        port=args.port,
        explain=args.explain,
    )
    return 0
