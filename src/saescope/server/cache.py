"""Store reads as JSON bytes, cached: a feature page is read and serialised once, then served
from memory. The cache is bounded (memory stays flat under load) and forgets an SAE's
entries when the store holds a newer write of it (an analysis re-run while serving)."""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from saescope.store import FeatureStore

CHECK_WRITES_EVERY_S = 2.0


def to_json(obj: Any) -> bytes:
    """JSON bytes; NaN and infinities (not JSON) become null."""
    try:
        return json.dumps(obj, allow_nan=False, separators=(",", ":")).encode()
    except ValueError:
        return json.dumps(_finite(obj), separators=(",", ":")).encode()


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


class CachedStore:
    def __init__(self, store: FeatureStore, max_entries: int = 4096) -> None:
        self.store = store
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._saes: dict[str, dict[str, Any]] = {}
        self._checked_at = -math.inf
        self._summaries: dict[str, tuple[str, dict[str, Any]]] = {}

    def saes(self) -> dict[str, dict[str, Any]]:
        """sae_id -> brief (sizes, model, hook point, written_at); re-read every few seconds."""
        now = time.monotonic()
        if now - self._checked_at > CHECK_WRITES_EVERY_S:
            fresh = {s["sae_id"]: s for s in self.store.list_saes()}
            with self._lock:
                changed = [k for k, v in self._saes.items() if fresh.get(k, {}).get("written_at") != v["written_at"]]
                if changed:
                    for key in [key for key in self._entries if key[1] in changed]:
                        del self._entries[key]
                self._saes, self._checked_at = fresh, now
        return self._saes

    def summary(self, sae_id: str) -> dict[str, Any]:
        """The store's SAE summary, read once per write of the SAE (it scans every feature's
        density for the histogram: too slow to repeat for each feature's panels)."""
        written_at = self.saes()[sae_id]["written_at"]
        held = self._summaries.get(sae_id)
        if held is None or held[0] != written_at:
            held = self._summaries[sae_id] = (written_at, self.store.sae_summary(sae_id))
        return held[1]

    def get(self, key: tuple, read: Callable[[], Any]) -> bytes:
        """The cached JSON of `key` (kind, sae_id, ...), or read() serialised and kept."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        body = to_json(read())
        with self._lock:
            self._entries[key] = body
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return body

    def __len__(self) -> int:
        return len(self._entries)
