"""What auto-interp reads from the feature store, through the store's public methods only.

A run directory, a store file, a postgresql:// URL or an open FeatureStore all work; feature
ids are checked against the SAE before anything is asked of an LLM.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from saescope.errors import ConfigError, SaescopeError
from saescope.store import FeatureStore, open_store

STORE_FILE = "features.db"


@contextmanager
def open_feature_store(store_or_run: Any) -> Iterator[FeatureStore]:
    """The store itself (left open), or one opened from a path / URL (closed afterwards)."""
    if isinstance(store_or_run, FeatureStore):
        yield store_or_run
        return
    where = str(store_or_run)
    if not where.startswith(("postgresql", "sqlite")) and Path(where).is_dir():
        if not (Path(where) / STORE_FILE).is_file():
            raise SaescopeError(
                f"store: the run directory {where} has no {STORE_FILE}; run the analysis "
                "(saescope analyze) first, or give the store file itself."
            )
        where = str(Path(where) / STORE_FILE)
    store = open_store(where, create=False)
    try:
        yield store
    finally:
        store.close()


def feature_pages(store: FeatureStore, sae_id: str, features: list[int]) -> list[dict[str, Any]]:
    """The feature pages of `features`, in that order; a feature not in the SAE is named."""
    if not features:
        return []
    known = set(store.feature_ids(sae_id))
    missing = [f for f in features if f not in known]
    if missing:
        top = max(known) if known else -1
        raise ConfigError(
            "features",
            missing[:5] if len(missing) > 1 else missing[0],
            f"feature ids of SAE {sae_id!r}: 0..{top}",
        )
    return list(store.iter_features(sae_id, list(features)))
