"""`saescope serve RUN_OR_STORE`: the web viewer on a run directory, store file or URL."""

from __future__ import annotations

import argparse

from saescope.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve the web viewer (browse, search and test features live)",
        description="Serve the web viewer and its JSON API (docs at /docs) on a run directory, a "
        "feature store file or a postgresql:// URL. The model and the SAEs load once at start.",
    )
    p.add_argument(
        "source", metavar="RUN_OR_STORE", help="run directory, store file or postgresql:// URL"
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument(
        "--no-live", action="store_true", help="serve the store only: no model, no live inference"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for live inference (default: %(default)s; more than the free "
        "cores slows every request down)",
    )
    p.add_argument(
        "--live-nice",
        type=int,
        default=5,
        help="niceness added to the inference worker process, so feature pages come first "
        "(default: %(default)s; 0 gives the model the same CPU priority)",
    )
    p.add_argument(
        "--cache-mb",
        type=int,
        default=512,
        help="memory for ready-encoded pages (default: %(default)s MB)",
    )
    p.add_argument(
        "--no-warm",
        action="store_true",
        help="do not fill the page cache in the background at start",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saescope.server.app import serve  # noqa: PLC0415 (fastapi and the model load only here)

    for name, value, accepted in (
        ("--threads", args.threads, 1),
        ("--cache-mb", args.cache_mb, 1),
        ("--live-nice", args.live_nice, 0),
    ):
        if value < accepted:
            raise ConfigError(name, value, f"an integer of at least {accepted}")
    serve(
        args.source,
        host=args.host,
        port=args.port,
        live=not args.no_live,
        threads=args.threads,
        live_nice=args.live_nice,
        cache_bytes=args.cache_mb * 2**20,
        warm=not args.no_warm,
    )
    return 0
