"""`saescope sae info PATH` and `saescope sae convert SRC DST`: inspect any SAE, write it natively;
`saescope sae list` and `saescope sae pull NAME`: published SAEs by name (saescope.sae.pretrained)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from saescope.sae.base import SAE
from saescope.sae.formats import FORMAT_MODULES
from saescope.sae.loading import load_sae
from saescope.sae.native import save_sae
from saescope.sae.pretrained import format_table, list_pretrained, pull


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sae", help="inspect SAEs in any supported format and convert them to the native one"
    )
    commands = parser.add_subparsers(dest="sae_command", metavar="SAE_COMMAND", required=True)

    info = commands.add_parser(
        "info", help="print an SAE's architecture, sizes, hook point and source format"
    )
    add_source_arguments(info)
    info.add_argument("--json", action="store_true", help="print the facts as one JSON object")
    info.set_defaults(func=run_info)

    convert = commands.add_parser(
        "convert", help="write an SAE in the native format (SAELens's layout)"
    )
    add_source_arguments(convert)
    convert.add_argument("dst", help="output folder (cfg.json + sae_weights.safetensors)")
    convert.set_defaults(func=run_convert)

    listing = commands.add_parser("list", help="list published SAEs (SAELens's registry) by name")
    listing.add_argument("--model", help="only this model's SAEs (HF id or SAELens's name)")
    listing.add_argument("--search", help="only SAEs whose release, id, hook or repo contains TEXT")
    listing.set_defaults(func=run_list)

    pulling = commands.add_parser(
        "pull", help="download a published SAE into the Hugging Face cache and print where"
    )
    pulling.add_argument("name", help="RELEASE/SAE_ID (see `sae list`) or a Neuronpedia id")
    pulling.set_defaults(func=run_pull)


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", help="an SAE folder or file, hf:ORG/NAME[/PATH][@REVISION], or RELEASE/SAE_ID"
    )
    parser.add_argument(
        "--format", choices=list(FORMAT_MODULES), help="the source format (default: detected)"
    )
    parser.add_argument("--layer", help="which SAE of a folder of layers (sparsify)")


def load_from_args(args: argparse.Namespace) -> SAE:
    kwargs = {"layer": args.layer} if args.layer else {}
    return load_sae(args.path, format=args.format, **kwargs)


def describe(sae: SAE) -> dict[str, Any]:
    """The facts `sae info` prints, in order."""
    cfg = sae.cfg
    facts: dict[str, Any] = {
        "architecture": cfg.architecture + (" transcoder" if cfg.is_transcoder else ""),
        "d_in": cfg.d_in,
        "d_sae": cfg.d_sae,
        "d_out": cfg.d_out,
        "k": cfg.k,
        "matryoshka_widths": cfg.matryoshka_widths,
        "skip_connection": cfg.skip_connection or None,
        "model": cfg.model_name,
        "hook_point": cfg.hook_name,
        "hook_point_out": cfg.hook_name_out,
        "hook_layer": cfg.hook_layer,
        "normalize_activations": cfg.normalize_activations,
        "apply_b_dec_to_input": cfg.apply_b_dec_to_input,
        "dtype": cfg.dtype,
        "parameters": sum(p.numel() for p in sae.parameters()),
        "format": sae.file_format,
        "source_format": cfg.source_format,
        "source": cfg.source_path,
    }
    return {key: value for key, value in facts.items() if value is not None}


def run_info(args: argparse.Namespace) -> int:
    facts = describe(load_from_args(args))
    if args.json:
        print(json.dumps(facts))
        return 0
    width = max(len(key) for key in facts)
    for key, value in facts.items():
        print(f"{key:<{width}}  {value}")
    return 0


def run_convert(args: argparse.Namespace) -> int:
    sae = load_from_args(args)
    folder = save_sae(sae, args.dst)
    print(
        f"wrote {sae.cfg.architecture} SAE (d_in={sae.d_in}, d_sae={sae.d_sae}) from {sae.cfg.source_format} to {folder}"
    )
    return 0


def run_list(args: argparse.Namespace) -> int:
    entries = list_pretrained(model=args.model, search=args.search)
    print(format_table(entries))
    print(f"{len(entries)} SAE(s)")
    return 0


def run_pull(args: argparse.Namespace) -> int:
    entry, folder = pull(args.name)
    print(f"{entry.name} ({entry.format}, {entry.repo_id}/{entry.path}) is at {folder}")
    return 0
