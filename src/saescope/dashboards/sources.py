"""Where a dashboard's data comes from: a feature store (object, file, URL or run directory),
one SAE in it, and which of its features."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from saescope.errors import ConfigError
from saescope.store import FeatureStore, open_store
from saescope.store.connect import resolve_store_argument

StoreLike = FeatureStore | str | Path


@contextlib.contextmanager
def opened_store(store_or_run: StoreLike) -> Iterator[FeatureStore]:
    """A FeatureStore as given, or opened (and closed after) from a run directory (its
    features.db), a store file or a postgresql:// URL."""
    if isinstance(store_or_run, FeatureStore):
        yield store_or_run
        return
    where = resolve_store_argument(store_or_run, must_exist=True).where
    with open_store(where, create=False) as store:
        yield store


def run_dir_of(store_or_run: StoreLike) -> Path | None:
    """The run directory a store argument names or lies in, if there is one."""
    if isinstance(store_or_run, FeatureStore):
        return None
    return resolve_store_argument(store_or_run).run_dir


def resolve_sae_id(store: FeatureStore, sae_id: str | None) -> str:
    """The SAE asked for, or the store's only SAE."""
    if sae_id is not None:
        store.sae_summary(sae_id)  # names the SAEs held when it is not there
        return sae_id
    held = [s["sae_id"] for s in store.list_saes()]
    if len(held) == 1:
        return held[0]
    raise ConfigError(
        "sae_id", None, f"one of the SAEs in {store.where}: {', '.join(held) or 'none yet'}"
    )


def parse_feature_ids(spec: str) -> list[int]:
    """'0-99,120,130-132' -> [0..99, 120, 130, 131, 132] (in the order given, no repeats)."""
    ids: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match or (match.group(2) and int(match.group(2)) < int(match.group(1))):
            raise ConfigError("features", spec, "feature ids and ranges like 0-99,120,130-132")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        ids += range(low, high + 1)
    return list(dict.fromkeys(ids))


def check_feature_ids(store: FeatureStore, sae_id: str, ids: list[int]) -> list[int]:
    d_sae = store.sae_summary(sae_id)["d_sae"]
    bad = [f for f in ids if not 0 <= f < d_sae]
    if bad:
        raise ConfigError("features", bad[:5], f"feature ids in 0..{d_sae - 1} (SAE {sae_id})")
    if not ids:
        raise ConfigError("features", ids, "at least one feature")
    return ids


def densest_features(store_or_run: StoreLike, sae_id: str | None, n: int) -> list[int]:
    """The n features of highest density, densest first."""
    with opened_store(store_or_run) as store:
        sae_id = resolve_sae_id(store, sae_id)
        page = store.features(
            sae_id, sort_by="density", descending=True, limit=max(1, min(n, 10_000))
        )
    return [item["feature"] for item in page["items"]][:n]


def random_live_features(
    store_or_run: StoreLike, sae_id: str | None, n: int, seed: int = 0
) -> list[int]:
    """n features drawn at random (seeded) among those that fired, in id order."""
    with opened_store(store_or_run) as store:
        live = np.flatnonzero(store.densities(resolve_sae_id(store, sae_id)) > 0)
    chosen = np.random.default_rng(seed).choice(live, size=min(n, len(live)), replace=False)
    return sorted(int(f) for f in chosen)
