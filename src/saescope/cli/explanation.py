"""`saescope explanation set|clear|list|current`: a feature's explanations by hand.

`set` adds a hand-written explanation (backend "manual") and makes it current; `clear` leaves
the feature without a current explanation (every explanation stays listed); `list` shows all
of a feature's explanations with their explainer and scores, current first; `current` picks
which one is current (by the id `list` shows). The viewer shows a change without a restart.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from saescope.cli.explain import STORE_HELP, open_target
from saescope.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "explanation",
        help="set, clear, list or pick a feature's explanation by hand",
        description=__doc__,
    )
    commands = p.add_subparsers(dest="explanation_command", metavar="ACTION", required=True)

    set_ = _command(commands, "set", "add a hand-written explanation and make it current")
    set_.add_argument("text", help="the explanation")
    set_.add_argument(
        "--label", action="store_true", help="a short label (1-6 words) instead of an explanation"
    )
    set_.set_defaults(func=run_set)

    clear = _command(commands, "clear", "leave the feature without a current explanation")
    clear.set_defaults(func=run_clear)

    list_ = _command(commands, "list", "every explanation of the feature with its scores")
    list_.add_argument("--json", action="store_true", help="print JSON")
    list_.set_defaults(func=run_list)

    pick = _command(commands, "current", "make explanation ID (from `list`) the current one")
    pick.add_argument("id", type=int, metavar="ID", help="the explanation's id")
    pick.set_defaults(func=run_current)


def _command(commands: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    p = commands.add_parser(name, help=help_text, description=help_text)
    p.add_argument("store", metavar="RUN_OR_STORE", help=STORE_HELP)
    p.add_argument("feature", type=int, metavar="FEATURE", help="the feature id")
    p.add_argument(
        "--sae", default=None, help="the SAE's id in the store (needed if it has several)"
    )
    return p


def _feature(target: Any, feature: int) -> int:
    d_sae = target.store.sae_summary(target.sae_id)["d_sae"]
    if not 0 <= feature < d_sae:
        raise ConfigError(
            "FEATURE", feature, f"a feature id of SAE {target.sae_id!r}: 0..{d_sae - 1}"
        )
    return feature


def run_set(args: argparse.Namespace) -> int:
    text = args.text.strip()
    if not text:
        raise ConfigError("text", args.text, "a non-empty explanation (`clear` removes one)")
    target = open_target(args)
    with target.store:
        feature = _feature(target, args.feature)
        if args.label:
            target.store.add_explanation(target.sae_id, feature, text, kind="label")
        else:
            target.store.set_explanation(target.sae_id, feature, text)
    kind = "label" if args.label else "explanation"
    print(f"feature {feature} of {target.sae_id}: {kind} set to {text!r}")
    return 0


def run_clear(args: argparse.Namespace) -> int:
    target = open_target(args)
    with target.store:
        feature = _feature(target, args.feature)
        target.store.set_explanation(target.sae_id, feature, None)
    print(f"feature {feature} of {target.sae_id}: no current explanation now")
    return 0


def run_list(args: argparse.Namespace) -> int:
    target = open_target(args)
    with target.store:
        rows = target.store.explanations(target.sae_id, _feature(target, args.feature))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"feature {args.feature} of {target.sae_id} has no explanations yet")
    for row in rows:
        print(format_row(row))
    return 0


def format_row(row: dict[str, Any]) -> str:
    e = row["explainer"]
    mark = "*" if row["current"] else " "
    by = (
        "by hand"
        if e["backend"] == "manual"
        else f"{e['backend']}:{e['model']} {e['prompt_format']} v{e['prompt_version']}"
    )
    scores = ", ".join(
        f"{s['scorer']} {s['value']:.3f}" if s["value"] is not None else f"{s['scorer']} -"
        for s in row["scores"]
    )
    lines = [f"{mark} #{row['id']:<5} {row['kind']:<11} {row['text']!r}"]
    lines.append(
        f"         {by}, {row['created_at']}, status {row['status']}"
        + (f"; {scores}" if scores else "")
    )
    return "\n".join(lines)


def run_current(args: argparse.Namespace) -> int:
    target = open_target(args)
    with target.store:
        feature = _feature(target, args.feature)
        ids = [r["id"] for r in target.store.explanations(target.sae_id, feature)]
        if args.id not in ids:
            raise ConfigError(
                "ID",
                args.id,
                f"the id of one of feature {feature}'s explanations: {ids or 'none yet'}",
            )
        target.store.set_current_explanation(target.sae_id, feature, args.id)
    print(f"feature {feature} of {target.sae_id}: explanation #{args.id} is current")
    return 0
