"""Resolve a corpus source (built-in name, local path, hf:NAME) and
stream its documents in order."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saescope.corpus import builtin, hf, local
from saescope.corpus.config import CorpusConfig
from saescope.corpus.local import Document
from saescope.errors import ConfigError, SaescopeError

# A shuffle buffer of documents: big enough to mix neighbouring documents well, small enough
# that it never holds much of a corpus (whichever bound is reached first).
SHUFFLE_BUFFER_DOCS = 10_000
SHUFFLE_BUFFER_CHARS = 32 * 2**20


@dataclass
class ResolvedSource:
    """What a source string points to."""

    kind: str  # "builtin", "local" or "hf"
    name: str  # built-in name, local path (absolute), or dataset name
    hf_config: str | None = None
    files: dict[str, list[Path]] = field(default_factory=dict)  # built-in part or "local" -> files


def resolve_source(cfg: CorpusConfig) -> ResolvedSource:
    """Work out what cfg.source is; SaescopeError if it is none of
    the accepted forms or is missing."""
    source = cfg.source
    if source.startswith(hf.PREFIX):
        name, config = hf.parse_hf_source(source)
        return ResolvedSource("hf", name, hf_config=config)
    if source in builtin.BUILTIN_CORPORA:
        files = {part: builtin.builtin_files(part) for part in builtin.builtin_parts(source)}
        return ResolvedSource("builtin", source, files=files)
    path = Path(source).expanduser()
    if not path.exists() and not _looks_like_path(source):
        raise ConfigError(
            "source",
            source,
            f"a built-in corpus ({', '.join(builtin.BUILTIN_CORPORA)}), an existing file or "
            "directory (txt, jsonl, parquet), or hf:NAME[:CONFIG] for a Hugging Face dataset",
        )
    files = local.local_files(path)
    for f in files:
        local.check_text_column(f, cfg.text_column)
    return ResolvedSource("local", str(path.resolve()), files={"local": files})


def _looks_like_path(source: str) -> bool:
    return "/" in source or "\\" in source or "." in source or source.startswith("~")


def iter_documents(cfg: CorpusConfig) -> Iterator[str]:
    """The documents of the corpus as text, in the (seeded) order they are packed in.

    Whitespace-only documents are skipped; a corpus with no text at all is an error."""
    for doc in iter_lazy_documents(cfg):
        yield doc if isinstance(doc, str) else doc.read()


def iter_lazy_documents(cfg: CorpusConfig) -> Iterator[Document]:
    """Like iter_documents, but a very large .txt file comes as a LargeTextFile handle."""
    cfg.check_fields()
    resolved = resolve_source(cfg)
    if resolved.kind == "builtin":
        docs = _builtin_documents(resolved, cfg)
    elif resolved.kind == "local":
        docs = _local_documents(resolved, cfg)
    else:
        docs = _hf_documents(resolved, cfg)
    n = 0
    for doc in docs:
        if not isinstance(doc, str) or doc.strip():
            n += 1
            yield doc
    if n == 0:
        raise SaescopeError(
            f"corpus {cfg.source!r} holds no text: every document in it is empty or whitespace."
        )


def _builtin_documents(resolved: ResolvedSource, cfg: CorpusConfig) -> Iterator[str]:
    files = {part: list(paths) for part, paths in resolved.files.items()}
    if cfg.shuffle:
        for part, paths in files.items():
            random.Random(f"{cfg.seed}:{part}").shuffle(paths)
    for part, path in builtin.interleave(files):
        yield builtin.read_builtin_file(part, path)


def _local_documents(resolved: ResolvedSource, cfg: CorpusConfig) -> Iterator[Document]:
    files = list(resolved.files["local"])
    if cfg.shuffle:
        random.Random(f"{cfg.seed}:files").shuffle(files)
    docs = (doc for f in files for doc in local.read_file(f, cfg.text_column))
    return _shuffled(docs, cfg.seed) if cfg.shuffle else docs


def _hf_documents(resolved: ResolvedSource, cfg: CorpusConfig) -> Iterator[Document]:
    dataset = hf.load_hf_dataset(resolved.name, resolved.hf_config, cfg.split, cfg.streaming)
    docs = hf.read_hf_dataset(dataset, resolved.name, cfg.text_column)
    return _shuffled(docs, cfg.seed) if cfg.shuffle else docs


def _shuffled(docs: Iterable[Document], seed: int) -> Iterator[Document]:
    """A bounded shuffle buffer: each new document replaces a random one, which is yielded."""
    rng = random.Random(f"{seed}:buffer")
    buffer: list[Document] = []
    chars = 0
    for doc in docs:
        buffer.append(doc)
        chars += _n_chars(doc)
        if len(buffer) >= SHUFFLE_BUFFER_DOCS or chars >= SHUFFLE_BUFFER_CHARS:
            j = rng.randrange(len(buffer))
            buffer[j], buffer[-1] = buffer[-1], buffer[j]
            out = buffer.pop()
            chars -= _n_chars(out)
            yield out
    rng.shuffle(buffer)
    yield from buffer


def _n_chars(doc: Document) -> int:
    return len(doc) if isinstance(doc, str) else 0  # a LargeTextFile is a handle: no text held


def describe_corpus(cfg: CorpusConfig) -> dict[str, Any]:
    """A JSON-able record of the corpus, for run manifests: enough
    to get the same contexts again."""
    cfg.check_fields()
    resolved = resolve_source(cfg)
    out: dict[str, Any] = {"source": cfg.source, "kind": resolved.kind}
    if resolved.kind == "builtin":
        out["parts"] = {
            part: {
                "root": builtin.builtin_root(part),
                "n_files": len(paths),
                "n_bytes": _n_bytes(paths),
            }
            for part, paths in resolved.files.items()
        }
        out["python_version"] = _python_version()
        if "python-docs" in resolved.files:
            out["parts"]["python-docs"]["package"] = (
                f"{builtin.DOCS_PACKAGE} {builtin.docs_package_version() or '(version unknown)'}"
            )
    elif resolved.kind == "local":
        paths = resolved.files["local"]
        out.update(path=resolved.name, n_files=len(paths), n_bytes=_n_bytes(paths))
        root = Path(resolved.name)
        out["files"] = [str(p.relative_to(root)) if root.is_dir() else p.name for p in paths[:1000]]
        out["text_column"] = cfg.text_column
    else:
        out.update(
            dataset=resolved.name,
            config=resolved.hf_config,
            split=cfg.split,
            streaming=cfg.streaming,
        )
        out["text_column"] = cfg.text_column
    out.update(
        context_length=cfg.context_length,
        prepend_bos=cfg.prepend_bos,
        shuffle=cfg.shuffle,
        seed=cfg.seed,
    )
    return out


def _n_bytes(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def _python_version() -> str:
    import platform

    return platform.python_version()
