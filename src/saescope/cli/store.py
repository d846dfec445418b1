"""`saescope store info|export|search`: look into a feature store and export from it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from saescope.errors import ConfigError
from saescope.store.export import DEFAULT_FEATURES_PER_BATCH, export_json, export_neuronpedia
from saescope.store.store import open_store

STORE_HELP = "a store file, a run directory (its features.db) or a postgresql://... URL"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "store", help="the feature store: list SAEs, search features, export", description=__doc__
    )
    commands = p.add_subparsers(dest="store_command", metavar="STORE_COMMAND", required=True)

    info = commands.add_parser("info", help="the SAEs in a store, or one SAE's summary")
    info.add_argument("store", help=STORE_HELP)
    info.add_argument("--sae", default=None, help="summarise this SAE (default: list all)")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=run_info)

    export = commands.add_parser(
        "export", help="one feature or all of an SAE's as JSON, or a Neuronpedia upload"
    )
    export.add_argument("store", help=STORE_HELP)
    export.add_argument("--sae", required=True, help="the SAE's id in the store")
    export.add_argument("--feature", type=int, default=None, help="only this feature (JSON only)")
    export.add_argument(
        "--out", required=True, help="JSON file to write, or folder for --neuronpedia"
    )
    export.add_argument(
        "--neuronpedia",
        action="store_true",
        help="write SAEDashboard's Neuronpedia batch files instead of JSON",
    )
    export.add_argument(
        "--features-per-batch",
        type=int,
        default=DEFAULT_FEATURES_PER_BATCH,
        help="features per Neuronpedia batch file (default: %(default)s)",
    )
    export.set_defaults(func=run_export)

    search = commands.add_parser(
        "search", help="features whose explanation or top contexts contain TEXT"
    )
    search.add_argument("store", help=STORE_HELP)
    search.add_argument("text", help="text to find (case-insensitive substring)")
    search.add_argument("--sae", default=None, help="only this SAE (default: all)")
    search.add_argument(
        "--limit", type=int, default=20, help="results to show (default: %(default)s)"
    )
    search.add_argument("--json", action="store_true", help="print JSON")
    search.set_defaults(func=run_search)


def run_info(args: argparse.Namespace) -> int:
    with open_store(args.store, create=False) as store:
        result: Any = store.sae_summary(args.sae) if args.sae else store.list_saes()
    if args.json:
        print(json.dumps(result, indent=2))
    elif args.sae:
        print(_format_summary(result))
    else:
        print(_format_saes(result, args.store))
    return 0


def run_export(args: argparse.Namespace) -> int:
    if args.neuronpedia and args.feature is not None:
        raise ConfigError(
            "--feature", args.feature, "no --feature with --neuronpedia (it exports whole SAEs)"
        )
    with open_store(args.store, create=False) as store:
        if args.neuronpedia:
            out = export_neuronpedia(
                store, args.sae, args.out, features_per_batch=args.features_per_batch
            )
        else:
            out = export_json(store, args.sae, args.out, feature=args.feature)
    print(f"wrote {out}")
    return 0


def run_search(args: argparse.Namespace) -> int:
    with open_store(args.store, create=False) as store:
        results = store.search(args.text, sae_id=args.sae, limit=args.limit)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    if not results:
        print(f"no feature matches {args.text!r}")
    for r in results:
        print(
            f"{r['sae_id']}  #{r['feature']:<6} {r['field']:<11} max_act {r['max_act']:8.3f}  {r['snippet']!r}"
        )
    return 0


def _format_saes(saes: list[dict[str, Any]], where: str) -> str:
    if not saes:
        return f"{where}: no SAEs stored yet"
    lines = [f"{len(saes)} SAE(s) in {where}:"]
    for s in saes:
        lines.append(
            f"  {s['sae_id']}  d_sae {s['d_sae']}  d_in {s['d_in']}  {s['architecture'] or ''}  "
            f"{s['n_tokens']:,} tokens  written {s['written_at']}"
        )
    return "\n".join(lines)


def _format_summary(s: dict[str, Any]) -> str:
    hist = s["density_histogram"]
    lines = [
        f"{s['sae_id']}: {s['architecture'] or 'SAE'} d_in {s['d_in']} d_sae {s['d_sae']}",
        f"  model {s['model']}  hook point {s['hook_point']}  analysed on {s['n_tokens']:,} tokens",
        f"  dead features: {hist['n_dead']} of {hist['n_features']}  explained: {s['n_explained']}",
        "  evals: "
        + (
            ", ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                for k, v in s["evals"].items()
            )
            or "none"
        ),
        "  scores: " + (", ".join(s["score_names"]) or "none"),
    ]
    return "\n".join(lines)
