"""Store reads as JSON bytes, cached: a feature page is read and serialised once, then served
from memory as ready bytes. The cache is bounded by bytes (memory stays flat under load),
least recently used first out, and forgets an SAE's entries when the store holds a newer
write of it (an analysis re-run while serving).

`warm` fills it in the background at start: every feature page of an SAE whose pages fit
the budget (the usual store), else the densest features' pages, so the first visitor of a
page does not pay the ~10 ms of CPU a page costs to read and encode.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson

from saescope.dashboards.data import dashboard_data
from saescope.dashboards.layout import Layout
from saescope.server.columns import FeatureTexts, read_texts
from saescope.store import FeatureStore

CHECK_WRITES_EVERY_S = 2.0
DEFAULT_MAX_BYTES = 512 * 2**20  # ~20,000 feature pages of the analysis defaults
WARM_SHARE = 0.75  # warming stops at this share of the budget: on-demand pages keep room


def to_json(obj: Any) -> bytes:
    """JSON bytes (orjson: several times faster than json); NaN and infinities become null,
    numpy arrays and scalars are written as their values."""
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


ENTRY_OVERHEAD = 120  # bytes of an OrderedDict slot and its linked-list node (CPython)


def entry_size(key: tuple, body: bytes) -> int:
    """The memory an entry holds: its bytes object and key (with what the key holds, one
    level down: a search key carries the query and a version tuple) and the dict's slot."""
    held = sys.getsizeof(body) + sys.getsizeof(key) + ENTRY_OVERHEAD
    for part in key:
        held += sys.getsizeof(part)
        for item in part if isinstance(part, tuple) else ():
            held += sys.getsizeof(item)
            held += sum(map(sys.getsizeof, item)) if isinstance(item, tuple) else 0
    return held


def panels_key(sae_id: str, feature: int) -> tuple:
    return ("panels", sae_id, feature)


class CachedStore:
    def __init__(self, store: FeatureStore, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._saes: dict[str, dict[str, Any]] = {}
        self._checked_at = -math.inf
        self._summaries: dict[str, tuple[str, dict[str, Any]]] = {}
        self._texts: dict[str, tuple[str, FeatureTexts]] = {}
        self.warming: dict[str, Any] = {"done": 0, "total": 0, "finished": False}

    def saes(self) -> dict[str, dict[str, Any]]:
        """sae_id -> brief (sizes, model, hook point, written_at); re-read every few seconds."""
        now = time.monotonic()
        if now - self._checked_at > CHECK_WRITES_EVERY_S:
            self._checked_at = now  # one reader at a time re-reads; the others use the last list
            fresh = {s["sae_id"]: s for s in self.store.list_saes()}
            with self._lock:
                changed = {
                    k
                    for k, v in self._saes.items()
                    if fresh.get(k, {}).get("written_at") != v["written_at"]
                }
                # an SAE's own pages, and what spans SAEs (search results, the list)
                stale = [
                    key
                    for key in self._entries
                    if changed and (key[0] in ("search", "saes") or key[1] in changed)
                ]
                for key in stale:
                    self.bytes -= entry_size(key, self._entries.pop(key))
                self._saes = fresh
        return self._saes

    def summary(self, sae_id: str) -> dict[str, Any]:
        """The store's SAE summary, read once per write of the SAE (it scans every feature's
        density for the histogram: too slow to repeat for each feature's panels)."""
        written_at = self.saes()[sae_id]["written_at"]
        held = self._summaries.get(sae_id)
        if held is None or held[0] != written_at:
            held = self._summaries[sae_id] = (written_at, self.store.sae_summary(sae_id))
        return held[1]

    def texts(self, sae_id: str) -> FeatureTexts:
        """Every feature's label and explanation, read once per write of the SAE (a new
        explanation shows on the map and in search results without a restart)."""
        written_at = self.saes()[sae_id]["written_at"]
        held = self._texts.get(sae_id)
        if held is None or held[0] != written_at:
            held = self._texts[sae_id] = (written_at, read_texts(self.store, sae_id))
        return held[1]

    def peek(self, key: tuple) -> bytes | None:
        """The cached bytes of `key`, or None; never reads the store (the event loop's fast path)."""
        with self._lock:
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
            return body

    def get(self, key: tuple, read: Callable[[], Any]) -> bytes:
        """The cached JSON of `key` (kind, sae_id, ...), or read() serialised and kept."""
        body = self.peek(key)
        if body is None:
            body = to_json(read())
            self.put(key, body)
        return body

    def put(self, key: tuple, body: bytes) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            self.bytes += entry_size(key, body) - (entry_size(key, old) if old is not None else 0)
            self._entries[key] = body
            while self.bytes > self.max_bytes and len(self._entries) > 1:
                self.bytes -= entry_size(*self._entries.popitem(last=False))

    def panels(self, sae_id: str, page: dict[str, Any]) -> dict[str, Any]:
        """One feature as the panels render it (the dashboards' DashboardData, one feature)."""
        return dashboard_data(
            f"{sae_id} #{page['feature']}", self.summary(sae_id), [page], Layout()
        )

    def __len__(self) -> int:
        return len(self._entries)

    # --- warming -------------------------------------------------------------------------

    def warm(self, stop: threading.Event, chunk: int = 64) -> None:
        """Fill the cache with panel pages, SAE by SAE, until done, `stop` is set or the
        budget's warm share is used; progress in self.warming (/api/health shows it)."""
        plans = [(sae_id, self._warm_plan(sae_id)) for sae_id in sorted(self.saes())]
        self.warming.update(total=sum(len(ids) for _, ids in plans), started_at=time.time())
        for sae_id, ids in plans:
            for start in range(0, len(ids), chunk):
                if stop.is_set() or self.bytes > WARM_SHARE * self.max_bytes:
                    return
                self._warm_chunk(sae_id, ids[start : start + chunk])
        self.warming.update(
            finished=True, seconds=round(time.time() - self.warming["started_at"], 1)
        )

    def _warm_plan(self, sae_id: str) -> list[int]:
        """Every feature when all of an SAE's pages fit the budget, else the densest (the
        feature browser lists them first) that fit."""
        densities = self.store.densities(sae_id)
        sample = [
            self.get(panels_key(sae_id, f), lambda f=f: self._read_panels(sae_id, f))
            for f in range(min(4, len(densities)))
        ]
        per_page = max(1.0, sum(map(len, sample)) / max(1, len(sample)))
        fits = int(WARM_SHARE * self.max_bytes / per_page)
        order = (
            range(len(densities))
            if fits >= len(densities)
            else densities.argsort()[::-1][:fits].tolist()
        )
        return list(order)

    def _read_panels(self, sae_id: str, feature: int) -> dict[str, Any]:
        return self.panels(sae_id, self.store.feature(sae_id, feature))

    def _warm_chunk(self, sae_id: str, ids: list[int]) -> None:
        todo = [f for f in ids if self.peek(panels_key(sae_id, f)) is None]
        for page in self.store.iter_features(sae_id, todo, chunk=len(todo)) if todo else ():
            key = panels_key(sae_id, page["feature"])
            if self.peek(key) is None:  # a request may have read it meanwhile
                self.put(key, to_json(self.panels(sae_id, page)))
            time.sleep(0)  # let the event loop thread take the GIL between pages
        self.warming["done"] += len(ids)
