"""`saescope serve RUN_OR_STORE`: the web viewer on a run directory, store file or URL."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from saescope.config import Config, add_config_arguments, config_from_args, setting, validate_flags


@dataclass
class ServeOptions(Config):
    """How the viewer is served (the store and the SAEs come from RUN_OR_STORE)."""

    host: str = setting("127.0.0.1", "address to listen on")
    port: int = setting(8000, "port", low=0, high=65535)
    live: bool = setting(
        True,
        "load the model for live inference",
        flag="--no-live",
        flag_help="serve the store only: no model, no live inference",
    )
    threads: int = setting(
        1,
        "torch threads for live inference (more than the free cores slows every request down)",
        low=1,
    )
    live_nice: int = setting(
        5,
        "niceness added to the inference worker process, so feature pages come first "
        "(0 gives the model the same CPU priority)",
        low=0,
    )
    allowed_host: list[str] = setting(
        [],
        "another Host name the viewer answers, besides the loopback names and --host "
        "(repeat it; '*' answers any: only behind a proxy that checks Host)",
        allow_empty=True,
    )
    token: str | None = setting(
        None,
        "access token every request then needs (default: the SAESCOPE_TOKEN environment "
        "variable); the link printed at start carries it, and the browser keeps it in a cookie",
    )
    cache_mb: int = setting(512, "memory for ready-encoded pages, in MB", low=1)
    warm: bool = setting(
        True,
        "fill the page cache in the background at start",
        flag="--no-warm",
        flag_help="do not fill the page cache in the background at start",
    )


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
    add_config_arguments(p, ServeOptions)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saescope.server.app import serve  # fastapi and the model load only here

    options = config_from_args(ServeOptions, args)
    validate_flags(options)
    serve(
        args.source,
        host=options.host,
        port=options.port,
        live=options.live,
        threads=options.threads,
        live_nice=options.live_nice,
        cache_bytes=options.cache_mb * 2**20,
        warm=options.warm,
        allowed_hosts=options.allowed_host,
        token=options.token,
    )
    return 0
