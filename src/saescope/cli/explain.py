"""`saescope explain RUN_OR_STORE`: explain features with an LLM (and with --score, score the
explanations), writing each feature's result into the feature store the moment it is done.

Every request goes through an on-disk cache (default: autointerp_cache/ next to the store), so
an interrupted run is resumed by running the same command again: features already explained
by the same explainer are skipped, and those in flight are answered from the cache.
The pieces `saescope score` shares (store, SAE and feature selection, the config) live here.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saescope.autointerp import FeatureResult
from saescope.autointerp.config import AutoInterpConfig, make_backend
from saescope.autointerp.into_store import Tally, explain_into_store
from saescope.config import (
    add_config_arguments,
    config_from_args,
    merge,
    parse_overrides,
    read_yaml,
    validate_flags,
)
from saescope.dashboards.sources import parse_feature_ids, random_live_features
from saescope.errors import ConfigError, SaescopeError
from saescope.store import FeatureStore, open_store
from saescope.store.connect import StoreArgument, resolve_store_argument

CACHE_DIR = "autointerp_cache"
STORE_HELP = "a run directory (its features.db), a store file or a postgresql:// URL"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "explain",
        help="explain features with an LLM (and score the explanations with --score)",
        description=__doc__,
    )
    add_target_arguments(p)
    p.add_argument(
        "--score",
        action="store_true",
        help="score each new explanation too (with --scorers; default detection, fuzzing)",
    )
    p.set_defaults(func=run)


def add_target_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments explain and score share: where, which SAE and features, the config."""
    p.add_argument("store", metavar="RUN_OR_STORE", help=STORE_HELP)
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="FIELD=VALUE",
        help="config overrides right after RUN_OR_STORE, e.g. n_explain=20 backend.model=... "
        "(fields: saescope config-docs explain)",
    )
    p.add_argument("--config", default=None, help="YAML file of config fields (flags win over it)")
    p.add_argument(
        "--sae", default=None, help="the SAE's id in the store (needed if it has several)"
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--features", default=None, help="feature ids and ranges, e.g. 1,5,10-20")
    which.add_argument("--top-density", type=int, default=None, metavar="N", help="the N densest")
    which.add_argument(
        "--random", type=int, default=None, metavar="N", help="N random features that fired"
    )
    which.add_argument("--all", action="store_true", help="every feature that fired")
    p.add_argument(
        "--redo",
        action="store_true",
        help="ask again for features already done by the same explainer / scorer",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_arguments(p, AutoInterpConfig)


# ---- the config ------------------------------------------------------------------------------


def config_from(args: argparse.Namespace) -> AutoInterpConfig:
    """Defaults < the YAML file < flags given < FIELD=VALUE overrides."""
    values = read_yaml(args.config) if args.config else {}
    flags = _changed(
        config_from_args(AutoInterpConfig, args).to_dict(), AutoInterpConfig().to_dict()
    )
    for item in args.overrides:
        if "=" not in item:
            raise SaescopeError(
                f"{item!r}: expected FIELD=VALUE overrides after RUN_OR_STORE (one store only)"
            )
    cfg = AutoInterpConfig.from_dict(merge(merge(values, flags), parse_overrides(args.overrides)))
    validate_flags(cfg)
    return cfg


def _changed(values: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The entries (at any depth) that differ from the defaults: the flags actually given."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, dict):
            inner = _changed(value, defaults.get(name, {}))
            if inner:
                out[name] = inner
        elif value != defaults.get(name):
            out[name] = value
    return out


# ---- the store, the SAE, the features ----------------------------------------------------------


@dataclass
class Target:
    store: FeatureStore
    where: StoreArgument
    sae_id: str

    @property
    def default_cache_dir(self) -> Path:
        """autointerp_cache/ in the run directory, or beside the store file."""
        if self.where.run_dir is not None:
            return self.where.run_dir / CACHE_DIR
        if self.where.path is not None:
            return self.where.path.parent / CACHE_DIR
        return Path(CACHE_DIR)  # a database URL: the working directory


def open_target(args: argparse.Namespace) -> Target:
    where = resolve_store_argument(args.store, must_exist=True, field="RUN_OR_STORE")
    store = open_store(where.where, create=False)
    try:
        return Target(store, where, sae_of(store, args.sae))
    except BaseException:
        store.close()
        raise


def sae_of(store: FeatureStore, sae_id: str | None) -> str:
    held = [s["sae_id"] for s in store.list_saes()]
    if not held:
        raise SaescopeError(
            f"{store.where} holds no analysed SAE yet: run `saescope analyze` into it first."
        )
    if sae_id is None and len(held) == 1:
        return held[0]
    if sae_id is None or sae_id not in held:
        raise ConfigError("--sae", sae_id, f"one of the SAEs in {store.where}: {', '.join(held)}")
    return sae_id


def choose_features(target: Target, args: argparse.Namespace) -> list[int]:
    """The features the selection flags name (an error when none is given)."""
    store, sae_id = target.store, target.sae_id
    if args.features is not None:
        ids = parse_feature_ids(args.features)
        d_sae = store.sae_summary(sae_id)["d_sae"]
        bad = [f for f in ids if not 0 <= f < d_sae]
        if bad:
            raise ConfigError(
                "--features", bad[0] if len(bad) == 1 else bad[:5],
                f"feature ids of SAE {sae_id!r}: 0..{d_sae - 1}",
            )  # fmt: skip
        return ids
    for flag, n in (("--top-density", args.top_density), ("--random", args.random)):
        if n is not None and n < 1:
            raise ConfigError(flag, n, "a number of features >= 1")
    if args.top_density is not None:
        return densest_live(store, sae_id, args.top_density)
    if args.random is not None:
        return random_live_features(store, sae_id, args.random, seed=args.seed)
    if args.all:
        return [int(f) for f, d in enumerate(store.densities(sae_id)) if d > 0]
    raise SaescopeError(
        "which features? give --features 1,5,10-20, --top-density N, --random N or --all"
    )


def densest_live(store: FeatureStore, sae_id: str, n: int) -> list[int]:
    """The n densest features that fired, densest first."""
    page = store.features(sae_id, sort_by="density", descending=True, limit=min(n, 10_000))
    return [item["feature"] for item in page["items"] if item["density"] > 0][:n]


# ---- the command ----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    backend = make_backend(cfg.backend)
    target = open_target(args)
    with target.store:
        features = choose_features(target, args)
        tally = explain_into_store(
            target.store, target.sae_id, features, backend, cfg,
            score=args.score, redo=args.redo,
            cache_dir=cfg.cache_dir or target.default_cache_dir, progress=not args.no_progress,
        )  # fmt: skip
        print_summary(target, features, tally, cfg, scored=args.score)
    return 0


# ---- the summary -----------------------------------------------------------------------------------


def print_summary(
    target: Target,
    features: list[int],
    tally: Tally,
    cfg: AutoInterpConfig,
    *,
    scored: bool,
    show: Callable[[str], None] = print,
) -> None:
    if len(tally.results) <= 20:
        for result in sorted(tally.results, key=lambda r: r.feature):
            show(feature_line(result))
    u = tally.usage
    parts = [f"{len(features)} feature(s) of {target.sae_id}: {tally.explained} explained"]
    if cfg.labels:
        parts.append(f"{tally.labelled} labelled")
    if tally.skipped:
        parts.append(f"{tally.skipped} already done (--redo asks again)")
    if tally.failed:
        parts.append(f"{len(tally.failed)} without a result")
    show(", ".join(parts))
    if scored or tally.scores:
        means = [
            f"{name} {mean:.3f} (n={len(tally.scores[name])})"
            for name, mean in tally.mean_scores().items()
        ]
        show("mean scores: " + (", ".join(means) or "none"))
    show(
        f"LLM: {u.requests} requests sent, {u.cached} answered from the cache, "
        f"{u.prompt_tokens:,} prompt + {u.completion_tokens:,} completion tokens"
    )
    show(f"written to {target.store.where}: {tally.written} result(s)")
    if tally.unexplained:
        listed = ", ".join(str(f) for f in tally.unexplained[:10])
        more = " ..." if len(tally.unexplained) > 10 else ""
        show(
            f"{len(tally.unexplained)} feature(s) have no current explanation to score "
            f"({listed}{more}): `saescope explain` them first"
        )
    for feature, why in sorted(tally.failed.items())[:10]:
        show(f"  feature {feature}: {why}")
    if any(why.startswith("max_requests") for why in tally.failed.values()):
        show(
            "the request budget ran out: run the same command again (with a larger budget) to go on"
        )


def feature_line(result: FeatureResult) -> str:
    explanation = result.explanation
    if explanation is not None and explanation.text is not None:
        kind = "label" if explanation.explainer.prompt_format == "label" else "explanation"
        text = f"{kind}: {explanation.text!r}"
    elif explanation is not None:
        text = f"no usable answer ({explanation.status})"
    else:
        text = "" if result.error is None else f"not done: {result.error}"
    scores = ", ".join(
        f"{s.scorer} {s.value:.2f}" if s.value is not None else f"{s.scorer} -"
        for s in result.scores
    )
    return f"#{result.feature:<6} {text}" + (f"  [{scores}]" if scores else "")
