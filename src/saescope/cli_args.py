"""Command-line arguments shared by several sub-commands (corpus selection, token counts)."""

from __future__ import annotations

import argparse
import re

from saescope.corpus import CorpusConfig

_SUFFIXES = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9}


def parse_count(text: str) -> int:
    """'100000', '100k', '2.5M', '1e6' -> int."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmbg]?)\s*", text.lower())
    if not match:
        raise argparse.ArgumentTypeError(
            f"got {text!r}; expected a count such as 100000, 100k, 2.5M or 1e6"
        )
    return int(float(match.group(1)) * _SUFFIXES[match.group(2)])


def add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = CorpusConfig()
    group = parser.add_argument_group("corpus")
    group.add_argument(
        "--corpus",
        default=defaults.source,
        help="built-in corpus name (builtin, python-docs, python-stdlib), a local file or directory "
        "(txt, jsonl, parquet), or hf:DATASET[:CONFIG] (default: %(default)s)",
    )
    group.add_argument(
        "--split",
        default=defaults.split,
        help="dataset split, for hf: corpora (default: %(default)s)",
    )
    group.add_argument(
        "--text-column",
        default=defaults.text_column,
        help="text column of jsonl/parquet/hf (default: %(default)s)",
    )
    group.add_argument(
        "--context-length",
        type=int,
        default=defaults.context_length,
        help="tokens per context (default: %(default)s)",
    )
    group.add_argument("--no-bos", action="store_true", help="do not prepend BOS to each context")
    group.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="seed of the document order (default: %(default)s)",
    )
    group.add_argument(
        "--no-shuffle", action="store_true", help="keep the corpus's own document order"
    )


def corpus_config_from_args(args: argparse.Namespace) -> CorpusConfig:
    return CorpusConfig(
        source=args.corpus,
        split=args.split,
        text_column=args.text_column,
        context_length=args.context_length,
        prepend_bos=not args.no_bos,
        seed=args.seed,
        shuffle=not args.no_shuffle,
    )
