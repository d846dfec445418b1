"""Local text files as documents: .txt (one document), .jsonl (one per
line), .parquet (one per row).

.txt and .jsonl may be gzip-compressed (.txt.gz, .jsonl.gz).

A .txt file bigger than LARGE_TXT_BYTES is not read into memory: it is handed on as a
LargeTextFile, which the packer reads in chunks that end at line breaks.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import pyarrow as pa
import pyarrow.parquet as pq

from saescope.errors import ConfigError, SaescopeError

SUFFIXES = {
    ".txt": "txt",
    ".txt.gz": "txt",
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".parquet": "parquet",
}
_PARQUET_BATCH_ROWS = 1024  # rows decoded at a time, so a big row group never sits whole in memory
LARGE_TXT_BYTES = 4 * 2**20
TXT_CHUNK_CHARS = 2**20


@dataclass(frozen=True)
class LargeTextFile:
    """One document too big to hold as a string: a handle that reads it in chunks."""

    path: Path

    def chunks(self) -> Iterator[str]:
        """The text in pieces of about TXT_CHUNK_CHARS, each ending at a
        line break where there is one."""
        with open_text(self.path) as f:
            carry = ""
            while block := f.read(TXT_CHUNK_CHARS):
                block = carry + block
                cut = block.rfind("\n") + 1 or len(block)
                carry = block[cut:]
                yield block[:cut]
            if carry:
                yield carry

    def read(self) -> str:
        with open_text(self.path) as f:
            return f.read()


Document = str | LargeTextFile


def file_kind(path: Path) -> str | None:
    """'txt', 'jsonl', 'parquet', or None for a file type we do not read."""
    name = path.name.lower()
    return next((kind for suffix, kind in SUFFIXES.items() if name.endswith(suffix)), None)


def open_text(path: Path) -> TextIO:
    """A text file, decompressed on the fly if it is gzip."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open(encoding="utf-8", errors="replace")


def local_files(path: Path) -> list[Path]:
    """The corpus files at path (a file, or a directory searched recursively), sorted."""
    if not path.exists():
        raise ConfigError(
            "source",
            str(path),
            "a file or directory that exists (this path does not exist), a built-in corpus name, "
            "or hf:NAME",
        )
    if path.is_file():
        if file_kind(path) is None:
            raise _unsupported(path)
        return [path]
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and file_kind(p) is not None
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not files:
        raise SaescopeError(
            f"corpus directory {str(path)!r} holds no corpus files; expected files ending in "
            f"{', '.join(SUFFIXES)} (searched recursively, hidden files skipped)."
        )
    return files


def check_text_column(path: Path, column: str) -> None:
    """For parquet, fail early (from the schema) if the text column is missing."""
    if file_kind(path) == "parquet":
        try:
            names = pq.ParquetFile(path).schema_arrow.names
        except (pa.ArrowException, OSError) as e:
            raise SaescopeError(
                f"corpus file {str(path)!r} is not a readable parquet file: {e}"
            ) from None
        if column not in names:
            raise missing_column(str(path), column, names)


def read_file(path: Path, column: str) -> Iterator[Document]:
    """The documents of one file, in file order."""
    try:
        yield from _read_file(path, column)
    except (OSError, EOFError, zlib.error, pa.ArrowException) as e:  # damaged gzip or parquet
        raise SaescopeError(
            f"could not read corpus file {str(path)!r}: {type(e).__name__}: {e}"
        ) from None


def _read_file(path: Path, column: str) -> Iterator[Document]:
    kind = file_kind(path)
    if kind == "txt" and path.stat().st_size > LARGE_TXT_BYTES:
        yield LargeTextFile(path)
    elif kind == "txt":
        with open_text(path) as f:
            yield f.read()
    elif kind == "jsonl":
        yield from _read_jsonl(path, column)
    elif kind == "parquet":
        yield from _read_parquet(path, column)
    else:
        raise _unsupported(path)


def _read_jsonl(path: Path, column: str) -> Iterator[str]:
    with open_text(path) as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise SaescopeError(
                    f"{path}:{line_no} is not valid JSON ({e.msg}); each line of a .jsonl file "
                    "must be one JSON object."
                ) from None
            if not isinstance(record, dict):
                raise SaescopeError(
                    f"{path}:{line_no} is a JSON {type(record).__name__}; each line of a .jsonl "
                    "file must be one JSON object."
                )
            if column not in record:
                raise missing_column(f"{path}:{line_no}", column, list(record))
            yield _as_text(record[column], f"{path}:{line_no}", column)


def _read_parquet(path: Path, column: str) -> Iterator[str]:
    check_text_column(path, column)
    row = 0
    for batch in pq.ParquetFile(path).iter_batches(
        batch_size=_PARQUET_BATCH_ROWS, columns=[column]
    ):
        for value in batch.column(0).to_pylist():
            yield _as_text(value, f"{path} row {row}", column)
            row += 1


def _as_text(value: object, where: str, column: str) -> str:
    if value is None:
        return ""  # a missing value is an empty document, skipped later
    if not isinstance(value, str):
        raise SaescopeError(
            f"{where}: column {column!r} holds a {type(value).__name__}, not text; set text_column "
            "to a text column."
        )
    return value


def missing_column(where: str, column: str, names: list[str]) -> SaescopeError:
    return SaescopeError(
        f"{where} has no column {column!r} (text_column); its columns are: "
        f"{', '.join(map(repr, names)) or 'none'}. "
        "Set text_column to the one that holds the text."
    )


def _unsupported(path: Path) -> SaescopeError:
    return SaescopeError(
        f"corpus file {str(path)!r} has an unsupported type {path.suffix or '(no suffix)'!r}; "
        f"supported: {', '.join(SUFFIXES)}, or a directory of such files."
    )
