"""Pieces several sub-commands share: the corpus flags, and running a stage alone or under torchrun."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from saescope.config import add_config_arguments, config_from_args
from saescope.corpus import CorpusConfig
from saescope.distributed import active, is_main

T = TypeVar("T")


def add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, CorpusConfig, title="corpus")


def corpus_config_from_args(args: argparse.Namespace) -> CorpusConfig:
    return config_from_args(CorpusConfig, args)


def run_stage(
    local: Callable[[], T], distributed: Callable[[], T], *, force_distributed: bool = False
) -> T | None:
    """Under torchrun (or when forced) every rank runs `distributed`, and only rank 0 gets its
    result back (the others return None and print nothing); without it, `local` runs."""
    if active() or force_distributed:
        result = distributed()
        return result if is_main() else None
    return local()
