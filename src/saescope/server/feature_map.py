"""The feature map: a 2-D layout of an SAE's decoder directions (UMAP, cosine metric).

UMAP (umap-learn) takes tens of seconds on a CPU, so a map is computed once per SAE in a
background thread and kept; tiny SAEs (too few points for UMAP's neighbour graph) and
machines without umap-learn get a PCA layout instead, and the result says which.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from saescope.server.paths import without_paths

UMAP_MIN_FEATURES = 256  # below this a PCA layout is as readable and needs no numba compile


def project(directions: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """directions [n, d] -> (coordinates [n, 2] scaled into [0, 1], method name)."""
    unit = directions / np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-12)
    coords, method = None, "pca"
    if len(unit) >= UMAP_MIN_FEATURES:
        try:
            import umap

            reducer = umap.UMAP(
                n_neighbors=15, min_dist=0.1, metric="cosine", random_state=seed, n_jobs=1
            )
            coords, method = np.asarray(reducer.fit_transform(unit)), "umap"
        except ImportError:
            pass
    if coords is None:
        coords = _pca(unit)
    low, high = coords.min(axis=0), coords.max(axis=0)
    return (coords - low) / np.maximum(high - low, 1e-12), method


def _pca(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


class FeatureMaps:
    """Maps by SAE id, each computed at most once, in the background, on first request, and
    kept as ready JSON bytes. A failed map is kept only RETRY_AFTER_S: a later poll tries
    again (the weights may be back)."""

    RETRY_AFTER_S = 30.0

    def __init__(self) -> None:
        self._maps: dict[str, tuple[bool, bytes, float]] = {}  # sae_id -> (ok, JSON, when)
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def get(
        self, sae_id: str, directions: Callable[[], Any], densities: Callable[[], np.ndarray]
    ) -> tuple[bool, bytes] | None:
        """(ok, JSON bytes) of an SAE's map, or None while it is computed (started here)."""
        with self._lock:
            held = self._maps.get(sae_id)
            if held is not None and (held[0] or time.monotonic() - held[2] < self.RETRY_AFTER_S):
                return held[0], held[1]
            if sae_id not in self._running:
                self._running.add(sae_id)
                threading.Thread(
                    target=self._compute,
                    args=(sae_id, directions, densities),
                    daemon=True,
                    name=f"feature-map {sae_id}",
                ).start()
        return None

    def _compute(
        self, sae_id: str, directions: Callable[[], Any], densities: Callable[[], np.ndarray]
    ) -> None:
        try:
            # a NaN decoder row (a broken SAE) lands in a corner instead of failing the map
            coords, method = project(np.nan_to_num(np.asarray(directions(), dtype=np.float32)))
            coords = np.nan_to_num(coords)
            result: dict[str, Any] = {
                "sae_id": sae_id,
                "method": method,
                "x": np.round(coords[:, 0], 5).tolist(),
                "y": np.round(coords[:, 1], 5).tolist(),
                "density": np.nan_to_num(np.asarray(densities(), dtype=np.float64)).tolist(),
            }
            ok = True
        except Exception as err:
            result = {"sae_id": sae_id, "error": without_paths(f"the feature map failed: {err}")}
            ok = False
        with self._lock:
            self._maps[sae_id] = (ok, orjson.dumps(result), time.monotonic())
            self._running.discard(sae_id)
