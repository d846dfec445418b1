"""`saescope demo`: the whole pipeline on built-in defaults (the bundled SmolLM2 and corpus).

For now: harvest activations at two hook points and print a summary of what was written.
Later stages (training, evals, analysis, dashboards, the viewer) extend this same command.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from saescope import __version__
from saescope.activations import ActivationCache, HarvestConfig, harvest
from saescope.cli_args import parse_count
from saescope.corpus import CorpusConfig, describe_corpus
from saescope.fileio import write_json
from saescope.models import load_model

DEMO_HOOKS = ["blocks.6.hook_resid_post", "blocks.6.hook_mlp_out"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run the pipeline on the bundled model and corpus",
        description="Harvest activations from the bundled SmolLM2-135M-Instruct on the built-in corpus "
        "and summarise them. Re-running resumes and reuses what is already there.",
    )
    p.add_argument("--out", default="runs/demo", help="run directory (default: %(default)s)")
    p.add_argument("--tokens", type=parse_count, default=64_000, help="tokens to harvest (default: 64k)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.out)
    print(f"saescope demo -> {run_dir}")
    model = load_model("smollm2")
    corpus = CorpusConfig()
    cfg = HarvestConfig(out=str(run_dir / "activations"), hooks=DEMO_HOOKS, corpus=corpus, n_tokens=args.tokens)
    write_run_json(run_dir, cfg)
    start = time.perf_counter()
    cache = harvest(cfg, model=model)
    seconds = time.perf_counter() - start
    print_summary(cache, seconds)
    return 0


def write_run_json(run_dir: Path, cfg: HarvestConfig) -> None:
    write_json(
        run_dir / "run.json",
        {
            "saescope": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "model": cfg.model,
            "corpus": describe_corpus(cfg.corpus),
            "stages": {"harvest": {"out": cfg.out, "hooks": cfg.hooks, "n_tokens": cfg.n_tokens, "dtype": cfg.dtype}},
        },
    )


def print_summary(cache: ActivationCache, seconds: float) -> None:
    m = cache.manifest
    size_mb = sum((cache.directory / s["file"]).stat().st_size for s in m.shards) / 2**20
    print(f"\nharvested {m.n_tokens:,} tokens ({len(m.shards)} shards, {size_mb:.1f} MB) in {seconds:.0f} s")
    print(f"corpus: {json.dumps(m.corpus)}")
    _, acts = next(cache.iter_batches(batch_size=64))
    print(f"\n{'hook point':32} {'d':>5} {'mean norm':>10} {'scale':>8} {'top |dim|s (mean |act|)':>28}")
    for hook, d in m.hooks.items():
        a = acts[hook][:, 1:].float().reshape(-1, d)  # without BOS
        top = a.abs().mean(0).topk(3)
        dims = ", ".join(f"{i}:{v:.2f}" for v, i in zip(top.values.tolist(), top.indices.tolist(), strict=True))
        stats = m.norms[hook]
        print(f"{hook:32} {d:>5} {stats.mean_norm:>10.2f} {stats.scaling_factor(d):>8.4f} {dims:>28}")
    print(f"\ncache: {cache.directory}  (read it with saescope.activations.load_cache)")
    print(f"run manifest: {cache.directory.parent / 'run.json'}")
