"""The `saescope` command: one sub-command per pipeline stage, each in its own module here.

This package depends on the stages and is never imported by them.
"""

from __future__ import annotations

import argparse
import os
import sys

from saescope.cli import (
    analyze,
    config_docs,
    corpus,
    dashboard,
    demo,
    evals,
    explain,
    explanation,
    harvest,
    models,
    sae,
    score,
    serve,
    store,
    train,
)
from saescope.distributed import init_from_env, shutdown
from saescope.errors import SaescopeError

# Each module has `register(subparsers)`, which adds its sub-command(s) and sets `func`.
COMMAND_MODULES = [
    corpus,
    models,
    sae,
    harvest,
    train,
    evals,
    analyze,
    store,
    explain,
    score,
    explanation,
    dashboard,
    serve,
    demo,
    config_docs,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="saescope",
        description="The `saescope` command: one sub-command per pipeline stage.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        init_from_env()  # under torchrun: join the process group
        return args.func(args) or 0
    except SaescopeError as err:
        print(f"saescope {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `saescope ... | head`: the reader has all it wanted
        # point stdout at /dev/null so that flushing it at exit does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
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
