"""Every kind of source: built-in corpora, txt, jsonl, parquet, directories, Hugging Face datasets."""

from __future__ import annotations

import itertools
import json

import pyarrow.parquet as pq

from saescope.corpus import (
    BUILTIN_CORPORA,
    CorpusConfig,
    describe_corpus,
    iter_contexts,
    iter_documents,
)
from saescope.corpus.builtin import builtin_files, interleave
from saescope.corpus.local import LARGE_TXT_BYTES, LargeTextFile
from saescope.corpus.sources import iter_lazy_documents
from tests.corpus.corpus_data import DOCS, write_jsonl, write_parquet


def docs_of(source: str, **kw) -> list[str]:
    return list(iter_documents(CorpusConfig(source=source, shuffle=False, **kw)))


def test_builtin_names_are_described():
    assert set(BUILTIN_CORPORA) == {"builtin", "python-docs", "python-stdlib"}
    assert all(isinstance(v, str) and v for v in BUILTIN_CORPORA.values())


def test_python_docs_is_english_prose_from_the_cpython_docs():
    files = builtin_files("python-docs")
    assert len(files) > 400 and all(f.name.endswith(".rst.txt") for f in files)
    docs = list(
        itertools.islice(iter_documents(CorpusConfig(source="python-docs", shuffle=False)), 30)
    )
    assert docs[0] == files[0].read_text(encoding="utf-8")
    assert sum(" the " in d for d in docs) >= 25


def test_python_stdlib_is_library_code_without_tests_or_site_packages():
    files = builtin_files("python-stdlib")
    assert len(files) > 500 and all(f.suffix == ".py" for f in files)
    names = {f.name for f in files}
    assert {"argparse.py", ["json", "__init__.py"][1]} <= names
    parts = {p for f in files for p in f.parts}
    assert not parts & {"site-packages", "dist-packages", "test", "tests", "__pycache__"}
    docs = list(
        itertools.islice(iter_documents(CorpusConfig(source="python-stdlib", shuffle=False)), 30)
    )
    assert sum(("def " in d or "import " in d) for d in docs) >= 25


def test_builtin_mixes_prose_and_code_evenly_in_a_shuffled_order():
    prose = {p.read_text(encoding="utf-8") for p in builtin_files("python-docs")}
    share = len(prose) / (len(prose) + len(builtin_files("python-stdlib")))
    docs = list(itertools.islice(iter_documents(CorpusConfig(source="builtin", seed=3)), 40))
    n_prose = sum(d in prose for d in docs)
    assert abs(n_prose - 40 * share) <= 1.5  # every stretch of the stream has both, in proportion
    assert docs != list(
        itertools.islice(iter_documents(CorpusConfig(source="builtin", seed=4)), 40)
    )


def test_txt_file_is_one_document(tmp_path):
    (tmp_path / "book.txt").write_text(DOCS[4], encoding="utf-8")
    assert docs_of(str(tmp_path / "book.txt")) == [DOCS[4]]


def test_jsonl_documents_come_from_the_text_column(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", DOCS, column="body")
    assert docs_of(str(path), text_column="body") == DOCS


def test_parquet_documents_are_read_by_row_group(tmp_path):
    path = write_parquet(tmp_path / "d.parquet", DOCS, row_group_size=5)
    assert pq.ParquetFile(path).num_row_groups == 5
    assert docs_of(str(path)) == DOCS


def test_directory_is_read_recursively_in_sorted_order(tmp_path):
    write_jsonl(tmp_path / "b" / "2.jsonl", DOCS[:3])
    write_parquet(tmp_path / "a.parquet", DOCS[3:5])
    (tmp_path / "b" / "1.txt").write_text("plain text file", encoding="utf-8")
    (tmp_path / "c.csv").write_text(
        "not,a,corpus,file", encoding="utf-8"
    )  # other files are ignored
    (tmp_path / ".hidden.txt").write_text("hidden", encoding="utf-8")
    assert docs_of(str(tmp_path)) == DOCS[3:5] + ["plain text file"] + DOCS[:3]
    shuffled = list(iter_documents(CorpusConfig(source=str(tmp_path), seed=5)))
    assert sorted(shuffled) == sorted(docs_of(str(tmp_path)))


def test_whitespace_documents_are_skipped(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", ["one", "   \n", "", "two"])
    assert docs_of(str(path)) == ["one", "two"]


def test_hf_dataset_from_a_local_folder_offline(tmp_path, smollm2_tokenizer):
    write_jsonl(tmp_path / "ds" / "train.jsonl", DOCS)
    write_jsonl(tmp_path / "ds" / "test.jsonl", DOCS[:2])
    source = f"hf:{tmp_path / 'ds'}"
    for streaming in (True, False):
        assert docs_of(source, streaming=streaming) == DOCS
    assert docs_of(source, split="test") == DOCS[:2]
    cfg = CorpusConfig(source=source, context_length=16)
    assert next(iter_contexts(cfg, smollm2_tokenizer)).shape == (16,)


def test_hf_dataset_of_parquet_files(tmp_path):
    write_parquet(tmp_path / "ds" / "train.parquet", DOCS, column="content")
    assert docs_of(f"hf:{tmp_path / 'ds'}", text_column="content") == DOCS


def test_describe_corpus_is_json_for_every_kind(tmp_path):
    write_jsonl(tmp_path / "d" / "x.jsonl", DOCS)
    for source, kind in [
        ("builtin", "builtin"),
        (str(tmp_path / "d"), "local"),
        (f"hf:{tmp_path / 'd'}", "hf"),
    ]:
        info = json.loads(json.dumps(describe_corpus(CorpusConfig(source=source, seed=7))))
        assert info["kind"] == kind and info["source"] == source
        assert info["seed"] == 7 and info["context_length"] == 128 and info["prepend_bos"] is True
    info = describe_corpus(CorpusConfig(source="builtin"))
    assert set(info["parts"]) == {"python-docs", "python-stdlib"}
    assert info["parts"]["python-docs"]["n_files"] == len(builtin_files("python-docs"))
    local = describe_corpus(CorpusConfig(source=str(tmp_path / "d")))
    assert local["files"] == ["x.jsonl"] and local["text_column"] == "text"
    hf = describe_corpus(CorpusConfig(source=f"hf:{tmp_path / 'd'}:default", split="train"))
    assert (
        hf["dataset"] == str(tmp_path / "d")
        and hf["config"] == "default"
        and hf["split"] == "train"
    )


def test_large_txt_file_is_streamed_in_chunks_as_one_document(tmp_path, smollm2_tokenizer):
    # Real prose, more than LARGE_TXT_BYTES of it, in one file.
    parts, size = [], 0
    for path in builtin_files("python-docs"):
        parts.append(path.read_text(encoding="utf-8"))
        size += len(parts[-1].encode())
        if size > LARGE_TXT_BYTES + 2**19:
            break
    text = "".join(parts)
    path = tmp_path / "big.txt"
    path.write_text(text, encoding="utf-8")

    (doc,) = iter_lazy_documents(CorpusConfig(source=str(path)))
    assert isinstance(doc, LargeTextFile)  # a handle, not the text
    chunks = list(doc.chunks())
    assert (
        len(chunks) > 4 and "".join(chunks) == text and all(c.endswith("\n") for c in chunks[:-1])
    )
    assert docs_of(str(path)) == [text]

    cfg = CorpusConfig(source=str(path), context_length=1024)
    contexts = list(iter_contexts(cfg, smollm2_tokenizer))
    body = [t for c in contexts for t in c[1:].tolist()]
    assert 2 not in body  # one document: no EOS between its chunks
    decoded = smollm2_tokenizer.decode(body, clean_up_tokenization_spaces=False)
    assert text.startswith(decoded[:-8]) and len(text) - len(decoded) < 1024 * 8


def test_builtin_interleaving_keeps_the_mix_even_at_every_point():
    files = {part: builtin_files(part) for part in ("python-docs", "python-stdlib")}
    order = [part for part, _ in interleave(files)]
    assert len(order) == sum(map(len, files.values()))
    share = len(files["python-docs"]) / len(order)
    n_docs = 0
    for k, part in enumerate(order, start=1):
        n_docs += part == "python-docs"
        assert abs(n_docs - k * share) <= 1.5


def test_gzipped_txt_and_jsonl(tmp_path):
    import gzip

    with gzip.open(tmp_path / "a.txt.gz", "wt", encoding="utf-8") as f:
        f.write(DOCS[2])
    with gzip.open(tmp_path / "b.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps({"text": d}) + "\n" for d in DOCS[:3])
    assert docs_of(str(tmp_path)) == [DOCS[2], *DOCS[:3]]
