"""What search looks through: each feature's explanation, the tokens its top examples are centred
on, and the text of those top contexts (rows of search_docs, made by rows.search_docs).

A fresh write keeps the token ids and centre of every top example as the examples stream into
the spool (TopWindows: features x top_k windows, a few bytes a token), and makes the rows from
those. A migration makes them from what is stored: the top examples are read back from the
examples table a chunk of features at a time (search_doc_rows).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from typing import Any

import numpy as np
from sqlalchemy import Connection, select

from saescope.store import rows
from saescope.store.arrays import unpack_arrays
from saescope.store.schema import examples

FEATURE_CHUNK = 512  # features whose top examples are read back at once


class TopWindows:
    """The top examples' token ids and centres, gathered while the examples are spooled."""

    def __init__(self) -> None:
        self.keys = array(
            "q"
        )  # (feature, interval, rank, centre, window length) of each, one after another
        self.ids = bytearray()  # every window's int32 token ids, one after another

    def add(
        self, feature: int, interval: int, rank: int, token_ids: np.ndarray, center: int
    ) -> None:
        """One top example; token_ids: [window] int32."""
        self.keys.extend((feature, interval, rank, center, len(token_ids)))
        self.ids += token_ids.tobytes()

    def n_docs(self, explanations: dict[int, str]) -> int:
        """How many rows doc_rows makes: two per feature with top examples, one per explanation."""
        return 2 * len(np.unique(np.frombuffer(self.keys, np.int64)[::5])) + len(explanations)

    def doc_rows(
        self, sae_id: str, explanations: dict[int, str], vocab: list[str] | None
    ) -> Iterator[dict[str, Any]]:
        """search_docs rows of every feature with top examples or an explanation, by feature: the
        rows search_doc_rows would read back once these examples are stored."""
        feature, interval, rank, center, length = (
            np.frombuffer(self.keys, np.int64).reshape(-1, 5).T
        )
        ends = np.cumsum(length)
        ids = np.frombuffer(self.ids, np.int32)
        order = np.lexsort(
            (rank, interval, feature)
        )  # the order the examples table's key reads them in
        sorted_features = feature[order]
        # per feature, the slice of `order` holding its top examples
        bounds = [*np.flatnonzero(np.diff(sorted_features, prepend=-1)).tolist(), len(order)]
        groups = {
            f: (lo, hi)
            for f, lo, hi in zip(
                sorted_features[bounds[:-1]].tolist(), bounds[:-1], bounds[1:], strict=True
            )
        }
        texts = rows.TokenTexts(vocab)
        for f in sorted(groups.keys() | explanations.keys()):
            lo, hi = groups.get(f, (0, 0))
            chosen = order[lo:hi]
            top = [
                (ids[end - n : end], c)
                for end, n, c in zip(
                    ends[chosen].tolist(),
                    length[chosen].tolist(),
                    center[chosen].tolist(),
                    strict=True,
                )
            ]
            yield from rows.search_docs(sae_id, f, top, explanations.get(f), texts)


def search_doc_rows(
    conn: Connection, sae_id: str, d_sae: int, explanations: dict[int, str], vocab: list[str] | None
) -> Iterator[dict[str, Any]]:
    """search_docs rows of every feature with stored top examples or an explanation, by feature."""
    texts = rows.TokenTexts(vocab)
    for lo in range(0, d_sae, FEATURE_CHUNK):
        hi = lo + FEATURE_CHUNK
        top: dict[int, list[tuple[np.ndarray, int]]] = {}
        for row in conn.execute(
            select(examples.c.feature, examples.c.center, examples.c.data)
            .where(
                examples.c.sae_id == sae_id,
                examples.c.kind == "top",
                examples.c.feature >= lo,
                examples.c.feature < hi,
            )
            .order_by(examples.c.feature, examples.c.interval, examples.c.rank)
        ):
            top.setdefault(row.feature, []).append(
                (unpack_arrays(row.data)["token_ids"], row.center)
            )
        explained = {f: text for f, text in explanations.items() if lo <= f < hi}
        for f in sorted(set(top) | set(explained)):
            yield from rows.search_docs(sae_id, f, top.get(f, []), explained.get(f), texts)
