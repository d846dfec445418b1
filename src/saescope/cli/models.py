"""`saescope models`: inspect a model's hook points."""

from __future__ import annotations

import argparse

from saescope.models.hooked import summarize_hooks
from saescope.models.loading import load_model


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="inspect models: hook points and their widths")
    actions = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    hooks = actions.add_parser("hooks", help="list a model's hook points with their widths")
    hooks.add_argument(
        "model", help="'smollm2', a Hugging Face model id, a local model directory or a .gguf file"
    )
    hooks.add_argument(
        "--all",
        action="store_true",
        help="every hook name, one a line (default: one line per hook kind)",
    )
    hooks.set_defaults(func=hooks_command)


def hooks_command(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    points = model.hook_points()
    print(
        f"{model.name}: {model.architecture}, {model.n_layers} layers, d_model {model.d_model}, "
        f"d_mlp {model.d_mlp}, d_vocab {model.d_vocab}, max context {model.max_context}"
    )
    if args.all:
        for name, width in points.items():
            print(f"{name}\t{width}")
    else:
        for line in summarize_hooks(points):
            print(f"  {line}")
    return 0
