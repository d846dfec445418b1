"""An analysis's example rows on disk between reading them and the write transaction.

The examples of a fresh analysis stream from its example pass (analysis.results.ExampleStream):
reading them runs the pass. They are checked and packed as they come and appended to an
unnamed temporary file, so memory holds one batch of rows, and the store's write transaction
(which takes SQLite's write lock) starts only once the pass is done, and lasts seconds. The file
goes beside a SQLite store (it needs the room the store is about to take; a tmpfs /tmp would
hold it in memory), else in the temporary directory (TMPDIR). The top examples' token ids and
centres are also kept in memory (search_text.TopWindows), for the search text.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from saescope.analysis.results import Example
from saescope.store import rows
from saescope.store.search_text import TopWindows

BATCH = 1000  # rows per pickled batch


class ExampleSpool:
    """Example rows of one SAE written to a temporary file (gone when closed, or if the process dies)."""

    def __init__(self, sae_id: str, d_sae: int, directory: Path | None = None) -> None:
        self.sae_id, self.d_sae = sae_id, d_sae
        # closed by __exit__; unnamed, so nothing is left behind even by a killed process
        self.file = tempfile.TemporaryFile(prefix="saescope-examples-", dir=directory)  # noqa: SIM115
        self.count = 0
        self.top = TopWindows()  # the windows of the top examples (they make the search text)

    def __enter__(self) -> ExampleSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()

    def write(self, examples: Iterable[Example]) -> None:
        """Check and pack every example (reading them once), appending the rows to the file."""
        batch: list[dict[str, Any]] = []
        for ex in examples:
            rows.check_example(self.sae_id, ex, self.d_sae)
            arrays = rows.example_arrays(ex)
            if ex.kind == "top":
                self.top.add(ex.feature, ex.interval, ex.rank, arrays["token_ids"], ex.center)
            batch.append(rows.example_row(self.sae_id, ex, arrays))
            if len(batch) == BATCH:
                self._dump(batch)
                batch = []
        if batch:
            self._dump(batch)

    def rows(self) -> Iterator[dict[str, Any]]:
        """The rows written, in order, read back one batch at a time."""
        self.file.seek(0)
        while True:
            try:
                batch = pickle.load(self.file)  # our own file, written above
            except EOFError:
                return
            yield from batch

    def _dump(self, batch: list[dict[str, Any]]) -> None:
        pickle.dump(batch, self.file, protocol=pickle.HIGHEST_PROTOCOL)
        self.count += len(batch)
