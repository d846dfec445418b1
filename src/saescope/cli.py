"""The `saescope` command: one sub-command per pipeline stage, each registered by its own package."""

from __future__ import annotations

import argparse
import importlib
import sys

from saescope.errors import SaescopeError

# Each module has `register(subparsers)`, which adds its sub-command(s) and sets `func`.
STAGE_MODULES = [
    "saescope.corpus.cli",
    "saescope.models.cli",
    "saescope.sae.cli",
    "saescope.activations.cli",
    "saescope.train.cli",
    "saescope.evals.cli",
    "saescope.analysis.cli",
    "saescope.store.cli",
    "saescope.dashboards.cli",
    "saescope.server.cli",
    "saescope.demo",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="saescope", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in STAGE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # stage not built yet
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    from saescope.distributed import init_from_env, shutdown  # noqa: PLC0415 (torchrun: join the group)

    try:
        init_from_env()
        return args.func(args) or 0
    except SaescopeError as err:
        print(f"saescope {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"saescope {args.command}: interrupted; run the same command again to resume.",
            file=sys.stderr,
        )
        return 130
    finally:
        shutdown()


if __name__ == "__main__":
    sys.exit(main())
