"""`saescope corpus`: list the built-in corpora, describe a corpus, preview or time its contexts."""

from __future__ import annotations

import argparse
import itertools
import json
import time
from typing import Any

from saescope.cli.common import add_corpus_arguments, corpus_config_from_args
from saescope.corpus.builtin import BUILTIN_CORPORA
from saescope.corpus.packing import iter_contexts
from saescope.corpus.sources import describe_corpus
from saescope.models import load_tokenizer


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "corpus",
        help="list built-in corpora, describe a corpus, preview or time its token contexts",
        description="Without options: print the corpus description (as recorded in run manifests) as JSON.",
    )
    p.add_argument("--list", action="store_true", help="list the built-in corpora and exit")
    p.add_argument(
        "--preview", type=int, default=0, metavar="N", help="print the first N contexts as text"
    )
    p.add_argument(
        "--measure",
        type=int,
        default=0,
        metavar="TOKENS",
        help="pack this many tokens and report tokens/s",
    )
    p.add_argument(
        "--model",
        default="smollm2",
        help="model whose tokenizer packs the contexts (default: %(default)s)",
    )
    add_corpus_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.list:
        for name, description in BUILTIN_CORPORA.items():
            print(f"{name:14} {description}")
        return 0
    cfg = corpus_config_from_args(args)
    print(json.dumps(describe_corpus(cfg), indent=2))
    if args.preview or args.measure:
        tokenizer = load_tokenizer(args.model)
        for i, context in enumerate(itertools.islice(iter_contexts(cfg, tokenizer), args.preview)):
            print(f"--- context {i} ---\n{tokenizer.decode(context)}")
        if args.measure:
            print(measure(cfg, tokenizer, args.measure))
    return 0


def measure(cfg: Any, tokenizer: Any, n_tokens: int) -> str:
    """Pack about n_tokens tokens and say how fast that went."""
    start = time.perf_counter()
    n_contexts = 0
    for _ in itertools.islice(iter_contexts(cfg, tokenizer), -(-n_tokens // cfg.context_length)):
        n_contexts += 1
    seconds = time.perf_counter() - start
    tokens = n_contexts * cfg.context_length
    return f"{tokens:,} tokens in {n_contexts:,} contexts, {seconds:.1f} s: {tokens / seconds:,.0f} tokens/s"
