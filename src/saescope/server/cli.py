"""`saescope serve RUN_OR_STORE`: the web viewer on a run directory, store file or URL."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve the web viewer (browse, search and test features live)",
        description="Serve the web viewer and its JSON API (docs at /docs) on a run directory, a "
        "feature store file or a postgresql:// URL. The model and the SAEs load once at start.",
    )
    p.add_argument("source", metavar="RUN_OR_STORE", help="run directory, store file or postgresql:// URL")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument("--no-live", action="store_true", help="serve the store only: no model, no live inference")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for live inference (default: %(default)s; more than the free "
                   "cores slows every request down)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saescope.server.app import serve  # noqa: PLC0415 (fastapi and the model load only here)

    serve(args.source, host=args.host, port=args.port, live=not args.no_live, threads=args.threads)
    return 0
