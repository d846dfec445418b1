"""Hugging Face datasets as documents: "hf:NAME" or "hf:NAME:CONFIG", streamed by default."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from saescope.corpus.local import missing_column
from saescope.errors import SaescopeError

PREFIX = "hf:"


def parse_hf_source(source: str) -> tuple[str, str | None]:
    """'hf:NAME' -> (NAME, None); 'hf:NAME:CONFIG' -> (NAME, CONFIG)."""
    name, colon, config = source[len(PREFIX) :].partition(":")
    if not name.strip() or (colon and not config.strip()):
        raise SaescopeError(
            f"source {source!r} is not a Hugging Face dataset reference; expected hf:NAME or "
            "hf:NAME:CONFIG, "
            "for example hf:roneneldan/TinyStories or hf:allenai/c4:en."
        )
    return name, config or None


def load_hf_dataset(name: str, config: str | None, split: str, streaming: bool) -> Any:
    """datasets.load_dataset, with its failures turned into one clear error."""
    try:
        import datasets
    except ImportError:
        raise SaescopeError(
            f"corpus hf:{name} needs the `datasets` library: pip install 'saescope[hf]' (or pip "
            "install datasets)."
        ) from None
    try:
        return datasets.load_dataset(name, config, split=split, streaming=streaming)
    except Exception as e:  # datasets raises many kinds; all mean "cannot load it"
        raise SaescopeError(
            f"could not load the Hugging Face dataset {name!r} (config {config!r}, split "
            f"{split!r}, streaming={streaming}): {type(e).__name__}: {e}. Check the name, config "
            "and split, and that you are online (or the dataset is in the local cache)."
        ) from None


def read_hf_dataset(dataset: Any, name: str, column: str) -> Iterator[str]:
    """The text column of each row, in dataset order."""
    names = _column_names(dataset)
    if names is not None and column not in names:
        raise missing_column(f"dataset {name!r}", column, names)
    for row in _rows(dataset, column if names is not None else None):
        if column not in row:
            raise missing_column(f"dataset {name!r}", column, list(row))
        value = row[column]
        if value is not None and not isinstance(value, str):
            raise SaescopeError(
                f"dataset {name!r}: column {column!r} holds {type(value).__name__}, not text; set "
                "text_column to a text column."
            )
        yield value or ""


def _column_names(dataset: Any) -> list[str] | None:
    # A streamed dataset may not know its columns until the first row is read.
    names = getattr(dataset, "column_names", None)
    return list(names) if names else None


def _rows(dataset: Any, column: str | None) -> Iterable[dict[str, Any]]:
    # Read only the text column when we can: other columns (images, long metadata) cost time.
    if column is not None and hasattr(dataset, "select_columns"):
        dataset = dataset.select_columns([column])
    return dataset
