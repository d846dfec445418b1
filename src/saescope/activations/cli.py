"""`saescope harvest`: write a model's activations at hook points to an on-disk cache."""

from __future__ import annotations

import argparse

from saescope.activations.harvest import DEFAULT_HOOK, HarvestConfig, harvest
from saescope.cli_args import add_corpus_arguments, corpus_config_from_args, parse_count


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "harvest",
        help="write activations at hook points to an on-disk cache (resumable)",
        description="Run the model over a corpus and write the activations at one or more hook points "
        "to a sharded cache. Run the same command again to resume an interrupted harvest.",
    )
    p.add_argument(
        "--model",
        default="smollm2",
        help="model spec: smollm2, an HF id or dir, a .gguf file (default: %(default)s)",
    )
    p.add_argument(
        "--hook",
        action="append",
        dest="hooks",
        metavar="HOOK",
        help=f"hook point, repeatable (default: {DEFAULT_HOOK})",
    )
    p.add_argument(
        "--tokens",
        type=parse_count,
        default=100_000,
        help="tokens to harvest, e.g. 100k, 2M (default: 100k)",
    )
    p.add_argument("--out", required=True, help="output directory of the cache")
    p.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "float16", "bfloat16", "fp32", "fp16", "bf16"],
        help="storage dtype",
    )
    p.add_argument(
        "--batch-size", type=int, default=8, help="contexts per forward pass (default: %(default)s)"
    )
    p.add_argument(
        "--shard-mb",
        type=float,
        default=64.0,
        help="approximate shard size in MB (default: %(default)s)",
    )
    p.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    add_corpus_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = HarvestConfig(
        out=args.out,
        model=args.model,
        hooks=args.hooks or [DEFAULT_HOOK],
        corpus=corpus_config_from_args(args),
        n_tokens=args.tokens,
        dtype=args.dtype,
        batch_size=args.batch_size,
        shard_mb=args.shard_mb,
        device=args.device,
    )
    from saescope.distributed import active, is_main

    if active():  # under torchrun: each rank writes its own shards of the one cache
        from saescope.distributed.harvest import harvest_distributed

        cache = harvest_distributed(cfg)
        if not is_main():
            return 0
    else:
        cache = harvest(cfg)
    m = cache.manifest
    print(
        f"{m.n_tokens:,} tokens of {', '.join(f'{h} (d={d})' for h, d in m.hooks.items())} in {cache.directory}"
    )
    return 0
