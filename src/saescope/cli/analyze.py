"""`saescope analyze SAE_OR_RUN`: analyse every feature of an SAE in one streaming pass, into the feature store."""

from __future__ import annotations

import argparse
from pathlib import Path

from saescope.analysis import analyze, default_sae_id, remove_analysis_checkpoint
from saescope.analysis.config import AnalysisConfig
from saescope.analysis.io import save_analysis
from saescope.cli.common import run_stage
from saescope.config import add_config_arguments
from saescope.config import config_from_args as analysis_config
from saescope.distributed import active, is_main
from saescope.distributed.analysis import analyze_distributed, remove_checkpoints
from saescope.errors import ConfigError
from saescope.runs.layout import holds_trained_sae, sae_dir_of, store_path
from saescope.sae import load_sae
from saescope.store import open_store


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="analyse every feature of an SAE into the feature store",
        description=__doc__,
    )
    p.add_argument(
        "sae", metavar="SAE_OR_RUN", help="an SAE (any format load_sae reads) or a run directory"
    )
    p.add_argument("--model", default=None, help="the model (default: the SAE's model_name)")
    p.add_argument(
        "--sae-id",
        default=None,
        help="the SAE's name in the store (default: run name or model/hook/arch-d_sae)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--out", default=None, help="write an analysis file (.npz) instead of a store"
    )
    where.add_argument(
        "--store",
        default=None,
        help="feature store file or postgresql:// URL (default: RUN/features.db)",
    )
    add_config_arguments(p, AnalysisConfig)
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> AnalysisConfig:
    return analysis_config(AnalysisConfig, args)


def destination(args: argparse.Namespace) -> tuple[str, str]:
    """('file', path) or ('store', path or URL)."""
    if args.out:
        return "file", args.out
    if args.store:
        return "store", args.store
    sae_path = Path(args.sae)
    if holds_trained_sae(sae_path):
        return "store", str(store_path(sae_path))
    raise ConfigError(
        "--out/--store",
        None,
        "--out FILE.npz or --store PATH_OR_URL (only a run directory has a default store)",
    )


def checkpoint_path(kind: str, where: str, sae_id: str) -> Path:
    """Where the accumulators are saved while the pass runs: beside the output."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in sae_id)
    if kind == "file":
        path = Path(where)
        return path.with_name(f".{path.name}.analysis-checkpoint.safetensors")
    base = Path(where).parent if "://" not in where else Path(".")
    return base / f".analysis-{safe}.checkpoint.safetensors"


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    kind, where = destination(args)
    sae = load_sae(sae_dir_of(args.sae))
    run_dir = Path(args.sae) if holds_trained_sae(args.sae) else None
    sae_id = args.sae_id or (run_dir.resolve().name if run_dir else default_sae_id(sae))
    checkpoint = checkpoint_path(kind, where, sae_id)
    if kind == "store" and is_main():
        open_store(where).close()  # a bad URL or a file that is not a store fails before the pass
    # the examples are made as the store or file writes them: memory does not grow with tokens;
    # under torchrun the tokens are sharded over the ranks, merged by collectives; rank 0 writes
    options = dict(model=args.model, checkpoint=checkpoint, sae_id=sae_id, stream_examples=True)
    result = run_stage(
        lambda: analyze(sae, cfg, **options),
        lambda: analyze_distributed(sae, cfg, **options),
    )
    if result is None:
        return 0
    result.sae_info["source"] = str(args.sae)
    if kind == "file":
        save_analysis(result, where)
    else:
        with open_store(where) as store:
            store.write_analysis(result)
    remove_analysis_checkpoint(checkpoint)  # only once the result is safely stored
    if active():
        remove_checkpoints(checkpoint)
    print(
        f"analysed {len(result.features.density):,} features over {result.n_tokens:,} tokens -> {where} ({sae_id})"
    )
    return 0
