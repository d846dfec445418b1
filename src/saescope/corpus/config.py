"""CorpusConfig: which text to read and how to cut it into token contexts."""

from __future__ import annotations

from dataclasses import dataclass

from saescope.config import Config, setting


@dataclass
class CorpusConfig(Config):
    """Where the text comes from and how it is packed into fixed-length token contexts.

    source is read as: "hf:NAME[:CONFIG]" a Hugging Face dataset; else a built-in corpus name
    (BUILTIN_CORPORA); else a local .txt/.jsonl/.parquet file or a directory of them (write
    ./builtin for a local folder that shares a built-in name).
    """

    source: str = setting(
        "builtin",
        "built-in corpus name (builtin, python-docs, python-stdlib), a local file or directory "
        "(txt, jsonl, parquet), or hf:DATASET[:CONFIG]",
        flag="--corpus",
    )
    split: str = setting("train", "dataset split, for hf: corpora")
    text_column: str = setting("text", "text column of jsonl/parquet/hf")
    streaming: bool = setting(True, "stream hf: datasets instead of downloading them", cli=False)
    context_length: int = setting(128, "tokens per context", low=2, note="tokens per context")
    prepend_bos: bool = setting(
        True,
        "BOS token at the start of every context",
        flag="--no-bos",
        flag_help="do not prepend BOS to each context",
    )
    shuffle: bool = setting(
        True,
        "shuffle the document order (deterministically, by seed)",
        flag="--no-shuffle",
        flag_help="keep the corpus's own document order",
    )
    seed: int = setting(0, "seed of the document order")

    def validate(self) -> None:
        """Check every field, and that the source exists (for HF datasets:
        that the name is well formed)."""
        super().validate()
        from saescope.corpus.sources import resolve_source  # sources imports this module

        resolve_source(self)
