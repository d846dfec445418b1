"""What search looks through, made from what is stored: each feature's explanation, the tokens
its top examples are centred on, and the text of those top contexts (rows of search_docs).

The top examples are read back from the examples table a chunk of features at a time, inside
the transaction that wrote them, so that an SAE's examples never need to be in memory at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from sqlalchemy import Connection, select

from saescope.store import rows
from saescope.store.arrays import unpack_arrays
from saescope.store.schema import examples

FEATURE_CHUNK = 512  # features whose top examples are read back at once


def search_doc_rows(conn: Connection, sae_id: str, d_sae: int, explanations: dict[int, str],
                    vocab: list[str] | None) -> Iterator[dict[str, Any]]:
    """search_docs rows of every feature with stored top examples or an explanation, by feature."""
    texts = rows.TokenTexts(vocab)
    for lo in range(0, d_sae, FEATURE_CHUNK):
        hi = lo + FEATURE_CHUNK
        top: dict[int, list[tuple[np.ndarray, int]]] = {}
        for row in conn.execute(select(examples.c.feature, examples.c.center, examples.c.data).where(
                examples.c.sae_id == sae_id, examples.c.kind == "top",
                examples.c.feature >= lo, examples.c.feature < hi,
        ).order_by(examples.c.feature, examples.c.interval, examples.c.rank)):
            top.setdefault(row.feature, []).append((unpack_arrays(row.data)["token_ids"], row.center))
        explained = {f: text for f, text in explanations.items() if lo <= f < hi}
        for f in sorted(set(top) | set(explained)):
            yield from rows.search_docs(sae_id, f, top.get(f, []), explained.get(f), texts)


def count_docs(has_top: np.ndarray, explanations: dict[int, str]) -> int:
    """How many rows search_doc_rows makes: two per feature with top examples, one per explanation."""
    return 2 * int(has_top.sum()) + len(explanations)
