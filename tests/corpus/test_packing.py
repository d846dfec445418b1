"""Packing documents into token contexts: BOS, lengths, document order, EOS, seeds, resuming."""

from __future__ import annotations

import itertools

import pytest
import torch

from saescope.corpus import CorpusConfig, iter_context_batches, iter_contexts, iter_documents
from tests.corpus.corpus_data import DOCS, write_jsonl

BOS, EOS = 1, 2


@pytest.fixture
def jsonl_cfg(tmp_path):
    path = write_jsonl(tmp_path / "docs.jsonl", DOCS)
    return CorpusConfig(source=str(path), context_length=16, shuffle=False)


def _stream(contexts: list[torch.Tensor], prepend_bos: bool) -> list[int]:
    """The corpus tokens of the contexts, BOS removed, in order."""
    return [t for c in contexts for t in (c[1:] if prepend_bos else c).tolist()]


def test_every_context_is_bos_then_corpus_tokens(smollm2_tokenizer, jsonl_cfg):
    contexts = list(iter_contexts(jsonl_cfg, smollm2_tokenizer))
    assert len(contexts) > 10
    for c in contexts:
        assert c.dtype == torch.int64 and c.shape == (16,)
        assert c[0].item() == BOS
        assert BOS not in c[1:].tolist()  # BOS only at the start: documents are joined with EOS


def test_contexts_decode_to_the_documents_in_order_joined_by_eos(smollm2_tokenizer, jsonl_cfg):
    contexts = list(iter_contexts(jsonl_cfg, smollm2_tokenizer))
    text = smollm2_tokenizer.decode(_stream(contexts, True), clean_up_tokenization_spaces=False)
    expected = "<|im_end|>".join(DOCS)
    # Only the last incomplete context is missing: at most context_length - 2 tokens of the end.
    assert expected.startswith(text)
    assert len(expected) - len(text) < 16 * 10
    assert text.count("<|im_end|>") >= len(DOCS) - 2


def test_token_count_and_dropped_remainder(smollm2_tokenizer, jsonl_cfg):
    ids = smollm2_tokenizer(DOCS, add_special_tokens=False)["input_ids"]
    n_stream = sum(map(len, ids)) + len(DOCS) - 1  # one EOS between each pair of documents
    contexts = list(iter_contexts(jsonl_cfg, smollm2_tokenizer))
    assert len(contexts) == n_stream // 15
    expected = list(itertools.chain.from_iterable(d + [EOS] for d in ids))[: len(contexts) * 15]
    assert _stream(contexts, True) == expected


def test_without_bos_contexts_are_plain_slices_of_the_stream(smollm2_tokenizer, jsonl_cfg):
    jsonl_cfg.prepend_bos = False
    contexts = list(iter_contexts(jsonl_cfg, smollm2_tokenizer))
    ids = smollm2_tokenizer(DOCS, add_special_tokens=False)["input_ids"]
    stream = list(itertools.chain.from_iterable(d + [EOS] for d in ids))
    assert len(contexts) == (len(stream) - 1) // 16
    assert _stream(contexts, False) == stream[: len(contexts) * 16]
    assert contexts[0][0].item() != BOS


def test_builtin_corpus_contexts_decode_to_its_documents(smollm2_tokenizer):
    cfg = CorpusConfig(context_length=64, shuffle=False)
    contexts = list(itertools.islice(iter_contexts(cfg, smollm2_tokenizer), 300))
    assert all(c.shape == (64,) and c[0].item() == BOS for c in contexts)
    text = smollm2_tokenizer.decode(_stream(contexts, True), clean_up_tokenization_spaces=False)
    docs = []
    for doc in iter_documents(cfg):
        docs.append(doc)
        if sum(map(len, docs)) > len(text):
            break
    assert "<|im_end|>".join(docs).startswith(text[:-8])  # the cut may split a multi-byte character


def test_same_seed_same_contexts_other_seed_other_order(smollm2_tokenizer, tmp_path):
    # Many small files and records, so that the order is all there is to differ.
    for i in range(6):
        write_jsonl(tmp_path / f"part{i}.jsonl", [f"{i}-{j}: {d}" for j, d in enumerate(DOCS)])

    def first(seed: int) -> torch.Tensor:
        cfg = CorpusConfig(source=str(tmp_path), context_length=32, seed=seed)
        return torch.stack(list(itertools.islice(iter_contexts(cfg, smollm2_tokenizer), 20)))

    assert torch.equal(first(0), first(0))
    assert not torch.equal(first(0), first(1))
    a = list(iter_documents(CorpusConfig(source=str(tmp_path), seed=0)))
    b = list(iter_documents(CorpusConfig(source=str(tmp_path), seed=1)))
    assert sorted(a) == sorted(b) and a != b  # same documents, another order


def test_builtin_shuffle_is_deterministic_per_seed():
    def first_docs(seed: int, shuffle: bool = True) -> list[str]:
        cfg = CorpusConfig(seed=seed, shuffle=shuffle)
        return [d[:200] for d in itertools.islice(iter_documents(cfg), 12)]

    assert first_docs(0) == first_docs(0)
    assert first_docs(0) != first_docs(1)
    assert first_docs(0) != first_docs(0, shuffle=False)


@pytest.mark.parametrize("skip", [0, 1, 7, 33])
def test_skip_contexts_equals_dropping_the_first_contexts(smollm2_tokenizer, jsonl_cfg, skip):
    everything = torch.stack(list(iter_contexts(jsonl_cfg, smollm2_tokenizer)))
    batches = list(
        iter_context_batches(jsonl_cfg, smollm2_tokenizer, batch_size=4, skip_contexts=skip)
    )
    assert all(b.shape[0] == 4 for b in batches[:-1]) and 1 <= batches[-1].shape[0] <= 4
    assert torch.equal(torch.cat(batches), everything[skip:])


def test_skipping_past_the_end_yields_nothing(smollm2_tokenizer, jsonl_cfg):
    n = len(list(iter_contexts(jsonl_cfg, smollm2_tokenizer)))
    assert list(iter_context_batches(jsonl_cfg, smollm2_tokenizer, 8, skip_contexts=n)) == []


def test_batches_of_the_builtin_corpus(smollm2_tokenizer):
    cfg = CorpusConfig(context_length=128)
    batches = list(itertools.islice(iter_context_batches(cfg, smollm2_tokenizer, batch_size=8), 5))
    assert all(b.shape == (8, 128) and b.dtype == torch.int64 for b in batches)
    assert (torch.cat(batches)[:, 0] == BOS).all()
    resumed = next(iter_context_batches(cfg, smollm2_tokenizer, batch_size=8, skip_contexts=16))
    assert torch.equal(resumed, batches[2])
