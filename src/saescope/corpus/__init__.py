"""Text corpora and their packing into token contexts: built-in offline corpora, local
txt/jsonl/parquet files and Hugging Face datasets, streamed and shuffled by seed."""

from saescope.corpus.builtin import BUILTIN_CORPORA
from saescope.corpus.config import CorpusConfig
from saescope.corpus.packing import iter_context_batches, iter_contexts
from saescope.corpus.sources import describe_corpus, iter_documents

__all__ = [
    "BUILTIN_CORPORA",
    "CorpusConfig",
    "describe_corpus",
    "iter_context_batches",
    "iter_contexts",
    "iter_documents",
]
