"""Bad input gives one clear SaescopeError naming the field or file, the value and what is accepted."""

from __future__ import annotations

import pytest

from saescope.corpus import CorpusConfig, iter_context_batches, iter_contexts, iter_documents
from saescope.errors import ConfigError, SaescopeError
from tests.corpus.corpus_data import DOCS, write_jsonl, write_parquet


def first_error(cfg: CorpusConfig) -> str:
    """The message of the error that reading the corpus raises (validate and iterate)."""
    with pytest.raises(SaescopeError) as info:
        cfg.validate()
        next(iter_documents(cfg))
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_path_that_does_not_exist(tmp_path):
    message = first_error(CorpusConfig(source=str(tmp_path / "nowhere.jsonl")))
    assert "nowhere.jsonl" in message and "does not exist" in message


def test_empty_directory(tmp_path):
    message = first_error(CorpusConfig(source=str(tmp_path)))
    assert str(tmp_path) in message and ".jsonl" in message


def test_files_with_only_whitespace(tmp_path):
    (tmp_path / "a.txt").write_text("  \n\t\n", encoding="utf-8")
    write_jsonl(tmp_path / "b.jsonl", ["", "   "])
    message = first_error(CorpusConfig(source=str(tmp_path)))
    assert "no text" in message


def test_corpus_shorter_than_one_context(tmp_path, smollm2_tokenizer):
    (tmp_path / "a.txt").write_text("just a few words", encoding="utf-8")
    with pytest.raises(SaescopeError, match="fewer than one context"):
        next(iter_contexts(CorpusConfig(source=str(tmp_path / "a.txt")), smollm2_tokenizer))


def test_missing_text_column_in_jsonl_names_the_columns(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", DOCS, column="content")
    message = first_error(CorpusConfig(source=str(path)))
    assert (
        "'text'" in message
        and "'content'" in message
        and "'id'" in message
        and "text_column" in message
    )


def test_missing_text_column_in_parquet_names_the_columns(tmp_path):
    path = write_parquet(tmp_path / "d.parquet", DOCS, column="content")
    with pytest.raises(SaescopeError, match="'content'") as info:
        CorpusConfig(source=str(path)).validate()  # found from the schema, before reading rows
    assert "'id'" in str(info.value)


def test_missing_text_column_in_hf_dataset_names_the_columns(tmp_path):
    write_jsonl(tmp_path / "ds" / "train.jsonl", DOCS, column="content")
    for streaming in (True, False):
        message = first_error(CorpusConfig(source=f"hf:{tmp_path / 'ds'}", streaming=streaming))
        assert "'text'" in message and "'content'" in message


def test_hf_dataset_that_cannot_be_loaded(tmp_path):
    write_jsonl(tmp_path / "ds" / "train.jsonl", DOCS)
    message = first_error(CorpusConfig(source=f"hf:{tmp_path / 'ds'}", split="validation"))
    assert "validation" in message and "could not load" in message
    assert "could not load" in first_error(
        CorpusConfig(source="hf:no-such-org/no-such-dataset-xyz")
    )
    assert "hf:NAME" in first_error(CorpusConfig(source="hf:"))


def test_unknown_builtin_name_lists_the_builtin_corpora():
    message = first_error(CorpusConfig(source="wikipedia"))
    assert "'wikipedia'" in message
    assert all(name in message for name in ("builtin", "python-docs", "python-stdlib"))


@pytest.mark.parametrize("bad", [1, 0, -5, 2.5, "128", True])
def test_bad_context_length(bad):
    with pytest.raises(ConfigError) as info:
        CorpusConfig(context_length=bad).validate()
    assert (
        info.value.field == "context_length"
        and ">= 2" in str(info.value)
        and repr(bad) in str(info.value)
    )


def test_bad_fields_are_named():
    for field, value in [
        ("source", ""),
        ("text_column", ""),
        ("split", None),
        ("seed", "x"),
        ("shuffle", "yes"),
    ]:
        with pytest.raises(ConfigError) as info:
            CorpusConfig(**{field: value}).validate()
        assert info.value.field == field


def test_unsupported_file_type(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text\nhello\n", encoding="utf-8")
    message = first_error(CorpusConfig(source=str(path)))
    assert (
        "'.csv'" in message and ".jsonl" in message and ".parquet" in message and ".txt" in message
    )


def test_bad_jsonl_line_names_file_and_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "fine"}\n{"text": broken\n', encoding="utf-8")
    with pytest.raises(SaescopeError, match=r"d\.jsonl:2"):
        list(iter_documents(CorpusConfig(source=str(path))))


def test_non_text_column(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [1, 2, 3])
    with pytest.raises(SaescopeError, match="int, not text"):
        list(iter_documents(CorpusConfig(source=str(path))))


def test_bad_batch_size_and_skip(smollm2_tokenizer):
    cfg = CorpusConfig()
    with pytest.raises(ConfigError, match="batch_size"):
        next(iter_context_batches(cfg, smollm2_tokenizer, 0))
    with pytest.raises(ConfigError, match="skip_contexts"):
        next(iter_context_batches(cfg, smollm2_tokenizer, 4, skip_contexts=-1))


def test_damaged_files(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    assert "not a readable parquet file" in first_error(
        CorpusConfig(source=str(tmp_path / "bad.parquet"))
    )
    (tmp_path / "bad.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00 truncated gzip")
    assert "could not read" in first_error(CorpusConfig(source=str(tmp_path / "bad.jsonl.gz")))
