"""`saescope corpus`: the built-in list, the JSON description, the speed measurement."""

from __future__ import annotations

import argparse
import json

from saescope.cli import corpus as corpus_cli
from saescope.corpus import BUILTIN_CORPORA, CorpusConfig


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="saescope")
    corpus_cli.register(parser.add_subparsers())
    args = parser.parse_args(["corpus", *argv])
    return args.func(args)


def test_list_names_every_builtin_corpus(capsys):
    assert run_cli(["--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in BUILTIN_CORPORA)


def test_describe_prints_the_corpus_as_json(capsys, tmp_path):
    (tmp_path / "a.txt").write_text("some text", encoding="utf-8")
    assert run_cli(["--corpus", str(tmp_path), "--seed", "4", "--context-length", "64"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "local" and info["files"] == ["a.txt"] and info["seed"] == 4
    assert info["context_length"] == 64


def test_measure_packs_the_tokens_asked_for(smollm2_tokenizer):
    line = corpus_cli.measure(CorpusConfig(context_length=100), smollm2_tokenizer, 1000)
    assert line.startswith("1,000 tokens in 10 contexts") and "tokens/s" in line
