"""Small real documents for the corpus tests, and writers of jsonl and parquet files."""

from __future__ import annotations

import json
from pathlib import Path

# Real, varied documents: different lengths, unicode, code, a document that is one word.
DOCS = [
    "The quick brown fox jumps over the lazy dog. " * 7,
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))\n",
    "Ünïcödé text: naïve café, 東京, emoji 🙂 and Ω ≈ 3.14.",
    "Short.",
    "A longer paragraph about sparse autoencoders. They learn a dictionary of features "
    "from the activations of a language model, with a sparsity penalty on the codes. " * 5,
    "Line one\nLine two\n\n\tIndented line three\n",
    "Numbers 0 1 2 3 4 5 6 7 8 9 10 100 1000 12345678901234567890",
    "Last document of the set, ending without a newline",
] * 3


def write_jsonl(path: Path, docs: list[str], column: str = "text") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for i, doc in enumerate(docs):
            f.write(json.dumps({"id": i, column: doc}) + "\n")
    return path


def write_parquet(
    path: Path, docs: list[str], column: str = "text", row_group_size: int = 5
) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({"id": list(range(len(docs))), column: docs})
    pq.write_table(table, path, row_group_size=row_group_size)
    return path
