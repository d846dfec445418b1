"""`saescope dashboard`: write a feature-centric or prompt-centric dashboard as one HTML file."""

from __future__ import annotations

import argparse
from pathlib import Path

from saescope.dashboards.dashboard import write_dashboard, write_prompt_dashboard
from saescope.dashboards.layout import PANELS, Layout
from saescope.dashboards.sources import (
    densest_features,
    opened_store,
    parse_feature_ids,
    random_live_features,
    resolve_sae_id,
)

DEFAULT_TOP_DENSITY = 50


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "dashboard",
        help="write feature or prompt dashboards as self-contained HTML",
        description="Write a dashboard that opens offline in any browser: the panels of some features "
        "of an SAE (a selector moves between them), or with --prompt the features of a prompt's tokens.",
    )
    p.add_argument(
        "store",
        metavar="SAE_OR_RUN",
        help="a run directory (its features.db), a feature store file or a postgresql:// URL",
    )
    p.add_argument("--sae-id", help="the SAE in the store (default: the store's only SAE)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--features", help="feature ids and ranges, e.g. 0-99,120")
    which.add_argument(
        "--top-density",
        type=int,
        metavar="N",
        help=f"the N densest features (default: {DEFAULT_TOP_DENSITY})",
    )
    which.add_argument(
        "--random", type=int, metavar="N", help="N random features among those that fired"
    )
    p.add_argument("--seed", type=int, default=0, help="of --random (default: %(default)s)")
    p.add_argument("--prompt", help="a prompt: write the prompt-centric dashboard of its tokens")
    p.add_argument(
        "--token",
        type=int,
        help="prompt token shown first (default: the last with a next token; "
        "negative counts from the end)",
    )
    p.add_argument(
        "--rows",
        type=int,
        default=10,
        help="features in each ranking of --prompt (default: %(default)s)",
    )
    p.add_argument("--model", help="--prompt: the model (default: the one the store names)")
    p.add_argument(
        "--sae", help="--prompt: the SAE's path (default: its recorded source, or the run's sae/)"
    )
    p.add_argument(
        "--panels", default=",".join(PANELS), help="panels to show, in order (default: %(default)s)"
    )
    p.add_argument(
        "--contexts",
        type=int,
        default=Layout.n_top,
        help="top-activating contexts shown (default: %(default)s)",
    )
    p.add_argument(
        "--per-group",
        type=int,
        default=Layout.n_per_group,
        help="contexts shown per quantile group (default: %(default)s)",
    )
    p.add_argument(
        "--out", help="the HTML file (default: RUN/dashboards/features.html or prompt.html)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    layout = Layout(
        panels=[name.strip() for name in args.panels.split(",") if name.strip()],
        n_top=args.contexts,
        n_per_group=args.per_group,
    ).validate()
    out = (
        Path(args.out)
        if args.out
        else _default_out(args.store, "prompt" if args.prompt else "features")
    )
    if args.prompt is not None:
        path = write_prompt_dashboard(
            args.store,
            args.sae_id,
            args.prompt,
            out,
            model=args.model,
            sae=args.sae,
            position=args.token,
            n_rows=args.rows,
            layout=layout,
        )
    else:
        with opened_store(args.store) as store:
            sae_id = resolve_sae_id(store, args.sae_id)
            if args.features:
                ids = parse_feature_ids(args.features)
            elif args.random:
                ids = random_live_features(store, sae_id, args.random, args.seed)
            else:
                ids = densest_features(store, sae_id, args.top_density or DEFAULT_TOP_DENSITY)
            path = write_dashboard(store, sae_id, ids, out, layout=layout)
    size = path.stat().st_size
    print(f"wrote {path} ({size / 2**20:.1f} MB); open it in a browser")
    return 0


def _default_out(store: str, name: str) -> Path:
    base = Path(store)
    if "://" in store or not base.is_dir():
        base = Path(".") if "://" in store else base.parent
    return base / "dashboards" / f"{name}.html"
