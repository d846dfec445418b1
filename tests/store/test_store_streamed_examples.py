"""Examples handed over as a stream (a fresh analysis's ExampleStream, made as it is read) are read
once, before the write transaction: the store needs no list of them, and other writers of the
store are not kept waiting while they are made."""

from __future__ import annotations

import pytest

from saescope.analysis.results import ExampleStream
from saescope.errors import SaescopeError
from saescope.store import open_store
from tests.store.store_data import assert_same_analysis, make_analysis


def test_streamed_examples_are_stored_and_read_once(store):
    analysis = make_analysis()
    examples = list(analysis.examples)
    stream = ExampleStream(
        iter([examples[:100], examples[100:]])
    )  # two batches, as the pass yields them
    analysis.examples = stream
    store.write_analysis(analysis)
    analysis.examples = examples
    assert_same_analysis(store.load_analysis(analysis.sae_id), analysis)
    assert store.search("paris")[0]["feature"] == 3  # search text made from the stored top examples
    analysis.examples = stream  # spent: refused, and the stored version stays
    with pytest.raises(SaescopeError, match="streamed once already"):
        store.write_analysis(analysis)
    analysis.examples = examples
    assert_same_analysis(store.load_analysis(analysis.sae_id), analysis)


def test_other_writers_go_on_while_examples_are_made(tmp_path):
    """SQLite has one write lock for the whole store: were the examples read inside the write
    transaction, the viewer's explanation below would wait for the example pass (30 s, then fail)."""
    path = tmp_path / "features.db"
    other, analysis = make_analysis("other", seed=1), make_analysis(seed=2)
    examples = list(analysis.examples)

    def made_while_read():
        for i, ex in enumerate(examples):
            if i == len(examples) // 2:
                viewer.set_explanation("other", 3, "written while the examples were made")
            yield ex

    with open_store(path) as store, open_store(path) as viewer:
        store.write_analysis(other)
        analysis.examples = made_while_read()
        store.write_analysis(analysis)
        assert viewer.feature("other", 3)["explanation"] == "written while the examples were made"
        analysis.examples = examples
        assert_same_analysis(store.load_analysis(analysis.sae_id), analysis)


def test_a_bad_streamed_example_keeps_the_stored_version(store):
    good = make_analysis()
    store.write_analysis(good)
    bad = make_analysis(seed=3)
    examples = list(bad.examples)
    examples[-1].kind = "best"  # found only when the stream gets there
    bad.examples = ExampleStream(iter([examples]))
    with pytest.raises(SaescopeError, match="kind 'best'; expected one of top, quantile, inactive"):
        store.write_analysis(bad)
    duplicated = make_analysis(seed=3)
    duplicated.examples.append(duplicated.examples[0])
    with pytest.raises(SaescopeError, match="none of it was kept"):
        store.write_analysis(duplicated)
    assert_same_analysis(store.load_analysis(good.sae_id), good)
