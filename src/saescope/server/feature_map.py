"""The feature map: a 2-D layout of an SAE's decoder directions (UMAP, cosine metric).

UMAP (umap-learn) takes tens of seconds on a CPU, so a map is computed once per SAE in a
background thread and kept; tiny SAEs (too few points for UMAP's neighbour graph) and
machines without umap-learn get a PCA layout instead, and the result says which.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

UMAP_MIN_FEATURES = 256  # below this a PCA layout is as readable and needs no numba compile


def project(directions: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """directions [n, d] -> (coordinates [n, 2] scaled into [0, 1], method name)."""
    unit = directions / np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-12)
    coords, method = None, "pca"
    if len(unit) >= UMAP_MIN_FEATURES:
        try:
            import umap  # noqa: PLC0415 (numba: slow to import, only here)

            reducer = umap.UMAP(
                n_neighbors=15, min_dist=0.1, metric="cosine", random_state=seed, n_jobs=1
            )
            coords, method = reducer.fit_transform(unit), "umap"
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
    """Maps by SAE id, each computed at most once, in the background, on first request."""

    def __init__(self) -> None:
        self._maps: dict[str, dict[str, Any]] = {}
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def get(self, sae_id: str, directions: Any, densities: np.ndarray) -> dict[str, Any] | None:
        """The map of an SAE, or None while it is computed (the computation starts here)."""
        with self._lock:
            if sae_id in self._maps:
                return self._maps[sae_id]
            if sae_id not in self._running:
                self._running.add(sae_id)
                threading.Thread(
                    target=self._compute,
                    args=(sae_id, directions, densities),
                    daemon=True,
                    name=f"feature-map {sae_id}",
                ).start()
        return None

    def _compute(self, sae_id: str, directions: Any, densities: np.ndarray) -> None:
        try:
            coords, method = project(np.asarray(directions()))
            result: dict[str, Any] = {
                "sae_id": sae_id,
                "method": method,
                "x": np.round(coords[:, 0], 5).tolist(),
                "y": np.round(coords[:, 1], 5).tolist(),
                "density": densities.tolist(),
            }
        except Exception as err:  # noqa: BLE001 (reported to the client, never kills the server)
            result = {"sae_id": sae_id, "error": f"the feature map failed: {err}"}
        with self._lock:
            self._maps[sae_id] = result
            self._running.discard(sae_id)
