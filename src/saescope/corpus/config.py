"""CorpusConfig: which text to read and how to cut it into token contexts."""

from __future__ import annotations

from dataclasses import dataclass

from saescope.errors import ConfigError


@dataclass
class CorpusConfig:
    """Where the text comes from and how it is packed into fixed-length token contexts.

    source is read as: "hf:NAME[:CONFIG]" a Hugging Face dataset; else a built-in corpus name
    (BUILTIN_CORPORA); else a local .txt/.jsonl/.parquet file or a directory of them (write
    ./builtin for a local folder that shares a built-in name).
    """

    source: str = "builtin"  # a built-in corpus name, a local path, or "hf:NAME" / "hf:NAME:CONFIG"
    split: str = "train"  # HF datasets only
    text_column: str = "text"  # jsonl / parquet / HF
    streaming: bool = True  # HF datasets only
    context_length: int = 128
    prepend_bos: bool = True  # BOS token at the start of every context
    shuffle: bool = True  # shuffle document order (deterministically, by seed)
    seed: int = 0

    def validate(self) -> None:
        """Check every field, and that the source exists (for HF datasets: that the name is well formed)."""
        self.check_fields()
        # Imported here: sources imports this module.
        from saescope.corpus.sources import resolve_source

        resolve_source(self)

    def check_fields(self) -> None:
        """Check each field's type and range, without looking at the source."""
        for name in ("source", "split", "text_column"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(name, value, "a non-empty string")
        for name in ("streaming", "prepend_bos", "shuffle"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, getattr(self, name), "true or false")
        if not _is_int(self.context_length) or self.context_length < 2:
            raise ConfigError(
                "context_length", self.context_length, "an integer >= 2 (tokens per context)"
            )
        if not _is_int(self.seed):
            raise ConfigError("seed", self.seed, "an integer")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
