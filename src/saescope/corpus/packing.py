"""Tokenize documents and pack them into fixed-length token contexts.

Documents are tokenized in batches (the fast tokenizer's batch call), joined into one stream
with the EOS token between documents, and cut into contexts of context_length tokens. With
prepend_bos each context is BOS + (context_length - 1) stream tokens. A document runs on into
the next context where it does not fit; the last, incomplete context is dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from saescope.corpus.config import CorpusConfig
from saescope.corpus.local import Document
from saescope.corpus.sources import iter_lazy_documents
from saescope.errors import ConfigError, SaescopeError

# Documents per tokenizer call: large enough for the tokenizer's threads to pay off, small
# enough that the first contexts come quickly and memory stays flat.
_BATCH_DOCS = 256
_BATCH_CHARS = 2**18  # about 60k tokens: the first contexts come in a fraction of a second


def iter_contexts(cfg: CorpusConfig, tokenizer: Any) -> Iterator[torch.Tensor]:
    """Token contexts one at a time: each a LongTensor [context_length]."""
    for block in _iter_context_blocks(cfg, tokenizer):
        yield from torch.from_numpy(block)


def iter_context_batches(
    cfg: CorpusConfig, tokenizer: Any, batch_size: int, skip_contexts: int = 0
) -> Iterator[torch.Tensor]:
    """Token contexts in batches: LongTensor [batch_size, context_length];
    the last batch may be smaller.

    skip_contexts drops the first contexts of the stream, so a resumed
    job continues where it stopped."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError("batch_size", batch_size, "an integer >= 1")
    if isinstance(skip_contexts, bool) or not isinstance(skip_contexts, int) or skip_contexts < 0:
        raise ConfigError("skip_contexts", skip_contexts, "an integer >= 0")
    pending = np.empty((0, cfg.context_length), dtype=np.int64)
    for block in _iter_context_blocks(cfg, tokenizer):
        if skip_contexts:
            n = min(skip_contexts, len(block))
            block, skip_contexts = block[n:], skip_contexts - n
        pending = np.concatenate([pending, block]) if len(pending) else block
        n_full = len(pending) // batch_size * batch_size
        for start in range(0, n_full, batch_size):
            yield torch.from_numpy(pending[start : start + batch_size])
        pending = pending[n_full:]
    if len(pending):
        yield torch.from_numpy(pending)


def _iter_context_blocks(cfg: CorpusConfig, tokenizer: Any) -> Iterator[np.ndarray]:
    """Blocks of whole contexts, int64 [n, context_length], from one tokenizer batch at a time."""
    cfg.check_fields()
    bos, eos = special_token_ids(tokenizer)
    body = cfg.context_length - 1 if cfg.prepend_bos else cfg.context_length
    carry = np.empty(0, dtype=np.int64)  # stream tokens not yet in a context
    n_stream_tokens = 0
    n_contexts = 0
    first = True
    for texts, starts in _piece_batches(iter_lazy_documents(cfg)):
        ids = _tokenize(tokenizer, texts)
        if first:
            starts[0], first = False, False  # no separator before the very first document
        stream = _join_with_separator(ids, starts, eos)
        n_stream_tokens += len(stream)
        stream = np.concatenate([carry, stream])
        n = len(stream) // body
        carry = stream[n * body :]
        if n == 0:
            continue
        block = stream[: n * body].reshape(n, body)
        if cfg.prepend_bos:
            block = np.concatenate([np.full((n, 1), bos, dtype=np.int64), block], axis=1)
        n_contexts += n
        yield block
    if n_contexts == 0:
        raise SaescopeError(
            f"corpus {cfg.source!r} holds only {n_stream_tokens:,} tokens, fewer than one context "
            f"of {cfg.context_length} tokens; use a smaller context_length or a larger corpus."
        )


def _tokenize(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """Token ids of each text, no special tokens added."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and hasattr(backend, "encode_batch_fast"):
        # The Rust tokenizer directly, without offsets: about 1.4x the speed of tokenizer(texts).
        return [e.ids for e in backend.encode_batch_fast(texts, add_special_tokens=False)]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def special_token_ids(tokenizer: Any) -> tuple[int, int]:
    """(BOS, document separator). Tokenizers without a BOS (Qwen) use their EOS for both."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    if eos is None:
        eos = bos
    if bos is None:
        bos = eos
    if eos is None:
        raise SaescopeError(
            f"the tokenizer {type(tokenizer).__name__} has neither a BOS nor an EOS token, so "
            "documents cannot be separated in the packed stream; use a tokenizer that has one."
        )
    return int(bos), int(eos)


def _join_with_separator(ids: list[list[int]], starts: list[bool], sep: int) -> np.ndarray:
    """The token lists as one int64 array, with sep before each piece that starts a document."""
    out = np.empty(sum(map(len, ids)) + sum(starts), dtype=np.int64)
    pos = 0
    for doc, start in zip(ids, starts, strict=True):
        if start:
            out[pos] = sep
            pos += 1
        out[pos : pos + len(doc)] = doc
        pos += len(doc)
    return out


def _pieces(docs: Iterator[Document]) -> Iterator[tuple[str, bool]]:
    """(text, starts a document): a LargeTextFile comes as several pieces, the rest as one."""
    for doc in docs:
        if isinstance(doc, str):
            yield doc, True
        else:
            for i, chunk in enumerate(doc.chunks()):
                yield chunk, i == 0


def _piece_batches(docs: Iterator[Document]) -> Iterator[tuple[list[str], list[bool]]]:
    """Pieces grouped for one tokenizer call: (texts, starts a document)."""
    texts: list[str] = []
    starts: list[bool] = []
    chars = 0
    for text, start in _pieces(docs):
        texts.append(text)
        starts.append(start)
        chars += len(text)
        if len(texts) >= _BATCH_DOCS or chars >= _BATCH_CHARS:
            yield texts, starts
            texts, starts, chars = [], [], 0
    if texts:
        yield texts, starts
