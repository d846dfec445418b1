"""The search text of a write is made from the top examples as they stream into the spool, not
read back from the examples table: it must be exactly what the stored examples make when read
back (as a schema migration does), row for row and in the same order."""

from __future__ import annotations

import random

import numpy as np
import pytest
from sqlalchemy import select

from saescope.analysis.results import Example, ExampleStream
from saescope.store import search_text
from saescope.store.schema import search_docs
from tests.store.store_data import VOCAB, make_analysis


def _varied_examples(examples: list[Example]) -> list[Example]:
    """The examples with windows of several lengths (contexts' edges cut them), a centre past its
    window's end, numpy ids as a fresh analysis hands them (int32, and int64 to convert), and
    in no key order, as the example pass yields them."""
    rng = random.Random(0)
    for i, ex in enumerate(examples):
        if ex.kind == "top" and i % 3 == 0:
            n = rng.randint(1, len(ex.token_ids) - 1)
            for name in (
                "token_ids",
                "acts",
                "loss_effects",
                "top_boosted",
                "top_boosted_values",
                "top_suppressed",
                "top_suppressed_values",
            ):
                if getattr(ex, name) is not None:
                    setattr(ex, name, getattr(ex, name)[:n])
            ex.center = min(ex.center, n)  # n: just past the end, which search leaves out
        if i % 2:
            ex.token_ids = np.asarray(ex.token_ids, dtype=np.int32 if i % 4 == 1 else np.int64)
    shuffled = list(examples)
    rng.shuffle(shuffled)
    return shuffled


@pytest.mark.parametrize("vocab", [VOCAB, None], ids=["vocab", "no-vocab"])
def test_search_text_of_a_write_is_what_its_stored_examples_make(store, vocab):
    analysis = make_analysis(d_sae=48, seed=5, vocab=vocab)
    store.write_analysis(analysis)
    for f in (1, 3, 20):  # 1 is dead: an explanation without top examples
        store.set_explanation(analysis.sae_id, f, f"explanation of {f}")
    examples = _varied_examples(list(analysis.examples))
    assert any(ex.center == len(ex.token_ids) for ex in examples if ex.kind == "top")
    analysis.examples = ExampleStream(iter([examples[:150], examples[150:]]))
    store.write_analysis(analysis)  # rewritten: the explanations are kept, and searched

    with store.engine.connect() as conn:
        stored = [
            tuple(row)
            for row in conn.execute(
                select(
                    search_docs.c.sae_id,
                    search_docs.c.feature,
                    search_docs.c.field,
                    search_docs.c.text,
                )
                .where(search_docs.c.sae_id == analysis.sae_id)
                .order_by(search_docs.c.id)
            )
        ]
        explanations = {1: "explanation of 1", 3: "explanation of 3", 20: "explanation of 20"}
        read_back = [
            (d["sae_id"], d["feature"], d["field"], d["text"])
            for d in search_text.search_doc_rows(conn, analysis.sae_id, 48, explanations, vocab)
        ]
    assert stored == read_back
    fields = {(f, field) for _, f, field, _ in stored}
    assert {(1, "explanation"), (3, "explanation"), (3, "top_tokens"), (3, "context")} <= fields
    assert (1, "context") not in fields
