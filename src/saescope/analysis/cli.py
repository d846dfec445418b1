"""`saescope analyze SAE_OR_RUN`: analyse every feature of an SAE in one streaming pass, into the feature store."""

from __future__ import annotations

import argparse
from pathlib import Path

from saescope.analysis.config import AnalysisConfig
from saescope.cli_args import add_corpus_arguments, corpus_config_from_args, parse_count
from saescope.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    defaults = AnalysisConfig()
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
        "--tokens",
        type=parse_count,
        default=defaults.n_tokens,
        help="tokens to analyse (default: %(default)s)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help="contexts per forward (default: %(default)s)",
    )
    p.add_argument(
        "--top-k",
        type=int,
        default=defaults.top_k,
        help="top-activating examples per feature (default: %(default)s)",
    )
    p.add_argument(
        "--quantile-intervals",
        type=int,
        default=defaults.quantile_intervals,
        help="activation intervals sampled (default: %(default)s)",
    )
    p.add_argument(
        "--per-interval",
        type=int,
        default=defaults.per_interval,
        help="examples per interval (default: %(default)s)",
    )
    p.add_argument(
        "--inactive",
        type=int,
        default=defaults.n_inactive,
        help="inactive examples per feature (default: %(default)s)",
    )
    p.add_argument(
        "--window",
        default="16,8",
        help="tokens before,after each example's token (default: %(default)s)",
    )
    p.add_argument(
        "--ablate-features",
        default="",
        help="feature ids whose loss effects come from real ablation, e.g. 3,17",
    )
    p.add_argument(
        "--cofiring-tokens",
        type=parse_count,
        default=defaults.cofiring_tokens,
        help="tokens (evenly spaced) for co-firing correlations (default: %(default)s)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=parse_count,
        default=defaults.checkpoint_every,
        help="tokens between checkpoints of the pass; an interrupted run resumes from the last (default: %(default)s)",
    )
    p.add_argument(
        "--spool-gib",
        type=float,
        default=defaults.spool_gib,
        help="disk for the model activations the example pass reads back instead of re-running the model; "
        "0 re-runs it (default: %(default)s)",
    )
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
    add_corpus_arguments(p)
    p.set_defaults(func=run)


def parse_ints(field: str, text: str, count: int | None = None) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = None
    if values is None or (count is not None and len(values) != count) or any(v < 0 for v in values):
        accepted = (
            f"{count} comma-separated integers >= 0"
            if count
            else "comma-separated feature ids, e.g. 3,17"
        )
        raise ConfigError(field, text, accepted)
    return values


def config_from_args(args: argparse.Namespace) -> AnalysisConfig:
    before, after = parse_ints("--window", args.window, 2)
    return AnalysisConfig(
        corpus=corpus_config_from_args(args),
        n_tokens=args.tokens,
        batch_size=args.batch_size,
        top_k=args.top_k,
        quantile_intervals=args.quantile_intervals,
        per_interval=args.per_interval,
        n_inactive=args.inactive,
        window=(before, after),
        ablate_features=parse_ints("--ablate-features", args.ablate_features),
        cofiring_tokens=args.cofiring_tokens,
        checkpoint_every=args.checkpoint_every,
        spool_gib=args.spool_gib,
    )


def destination(args: argparse.Namespace) -> tuple[str, str]:
    """('file', path) or ('store', path or URL)."""
    if args.out:
        return "file", args.out
    if args.store:
        return "store", args.store
    sae_path = Path(args.sae)
    if (sae_path / "sae" / "cfg.json").exists():
        return "store", str(sae_path / "features.db")
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
    from saescope.analysis import analyze, default_sae_id, remove_analysis_checkpoint
    from saescope.analysis.io import save_analysis
    from saescope.runs.layout import sae_dir_of
    from saescope.sae import load_sae

    cfg = config_from_args(args)
    kind, where = destination(args)
    sae = load_sae(sae_dir_of(args.sae))
    run_dir = Path(args.sae) if (Path(args.sae) / "sae" / "cfg.json").exists() else None
    sae_id = args.sae_id or (run_dir.resolve().name if run_dir else default_sae_id(sae))
    checkpoint = checkpoint_path(kind, where, sae_id)
    from saescope.distributed import active, is_main

    if (
        kind == "store" and is_main()
    ):  # open it first: a bad URL or a file that is not a store fails before the pass
        from saescope.store import open_store

        open_store(where).close()
    if (
        active()
    ):  # under torchrun: tokens sharded over the ranks, merged by collectives; rank 0 writes
        from saescope.distributed.analysis import analyze_distributed, remove_checkpoints

        result = analyze_distributed(
            sae, cfg, model=args.model, checkpoint=checkpoint, sae_id=sae_id, stream_examples=True
        )
        if not is_main():
            return 0
    else:  # the examples are made as the store or file writes them: memory does not grow with tokens
        result = analyze(
            sae, cfg, model=args.model, checkpoint=checkpoint, sae_id=sae_id, stream_examples=True
        )
    result.sae_info["source"] = str(args.sae)
    if kind == "file":
        save_analysis(result, where)
    else:
        from saescope.store import open_store

        with open_store(where) as store:
            store.write_analysis(result)
    remove_analysis_checkpoint(checkpoint)  # only once the result is safely stored
    if active():
        remove_checkpoints(checkpoint)
    print(
        f"analysed {len(result.features.density):,} features over {result.n_tokens:,} tokens -> {where} ({sae_id})"
    )
    return 0
