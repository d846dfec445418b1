"""load_sae: one entry point for every format: local paths, `hf:REPO/PATH` specs and published
SAEs by name ("RELEASE/SAE_ID" as SAELens names them, or a Neuronpedia id)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from saescope.errors import SaescopeError
from saescope.sae.base import SAE
from saescope.sae.formats import detect_format, format_module
from saescope.sae.pretrained import PretrainedSAE, pull

HF_PREFIX = "hf:"
# normalisations a registry's norm scaling factor can be folded into (per-token ones cannot)
SCALABLE_NORMS = ("none", "expected_average_only_in", "constant_scale")


def resolve_source(path_or_spec: str | Path) -> tuple[Path, PretrainedSAE | None]:
    """A local path for a path, an `hf:` spec or a published SAE's name (downloaded if needed),
    with the registry's entry for a name."""
    text = str(path_or_spec)
    if text.startswith(HF_PREFIX):
        from saescope.sae.hub import download_sae_files  # huggingface_hub only when needed

        return download_sae_files(text[len(HF_PREFIX) :]), None
    path = Path(text).expanduser()
    if path.exists():
        return path, None
    if text.startswith(("/", ".", "~")):
        raise SaescopeError(f"{path}: no such file or folder")
    entry, folder = pull(text)  # not a local path: a published SAE's name (errors say both)
    return folder, entry


def resolve_path(path_or_spec: str | Path) -> Path:
    """A local path for a path, an `hf:ORG/NAME[/SUBPATH][@REVISION]`
    spec or a published SAE's name."""
    return resolve_source(path_or_spec)[0]


def load_sae(
    path_or_spec: str | Path,
    format: str | None = None,  # the natural name for users
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    **kwargs: Any,
) -> SAE:
    """Load an SAE from any supported format; detects the format unless `format` names it.

    Returns an SAE whose encode() gives dense feature acts and whose forward() is the source's
    full output (skip connection included). Extra keyword arguments go to the format's reader
    (e.g. layer= for a sparsify folder of layers).
    """
    path, entry = resolve_source(path_or_spec)
    name = format or detect_format(path)
    if entry is not None and format is None and name != entry.format:
        raise SaescopeError(
            f"{entry.name}: the registry says {entry.format} files but {path} holds {name} files"
        )
    sae = read_sae(name, path, **kwargs)
    sae.file_format = name  # the format of these files (source_format: where the SAE came from)
    if sae.cfg.source_format is None:
        sae.cfg.source_format = name
    if sae.cfg.source_path is None:
        sae.cfg.source_path = str(path_or_spec)
    if entry is not None:
        apply_registry(sae, entry)
    if device is not None or dtype is not None:
        sae = sae.to(device=device, dtype=dtype)
        if dtype is not None:
            sae.cfg.dtype = str(dtype).removeprefix("torch.")
    return sae.eval()


def apply_registry(sae: SAE, entry: PretrainedSAE) -> None:
    """What the registry knows and the files may not: the model's HF id, the hook point, SAELens's
    config overrides, the Neuronpedia id, and the norm scaling factor (folded into the weights)."""
    cfg = sae.cfg
    cfg.model_name = entry.model  # the HF id, which load_model takes (files often hold other names)
    cfg.hook_name = cfg.hook_name or entry.hook
    cfg.source_path = entry.name
    overrides = entry.config_overrides or {}
    if "normalize_activations" in overrides:
        cfg.normalize_activations = overrides["normalize_activations"]
    cfg.dataset_path = cfg.dataset_path or overrides.get("dataset_path")
    metadata = cfg.extra.setdefault("metadata", {})
    if entry.neuronpedia:
        metadata["neuronpedia_id"] = entry.neuronpedia
    applied = fold_norm_scaling_factor(sae, entry.norm_scaling_factor)
    cfg.extra["pretrained"] = {
        "release": entry.release,
        "sae_id": entry.sae_id,
        "repo_id": entry.repo_id,
        "path": entry.path,
        "norm_scaling_factor_applied": applied,
    }


def fold_norm_scaling_factor(sae: SAE, factor: float | None) -> float | None:
    """Fold the registry's input scale into the weights, as SAELens's from_pretrained does.

    Skipped when the files carry their own constant scale (Llama Scope's hyperparams do: the
    registry's factor is the same number, and applying it twice would be wrong).
    """
    if factor is None or float(sae.input_scale) != 1.0:
        return None
    if sae.cfg.normalize_activations not in SCALABLE_NORMS:
        return None
    with torch.no_grad():
        sae.input_scale.fill_(factor)
    sae.cfg = sae.cfg.replace(normalize_activations="constant_scale")
    sae.fold_input_scale()
    return factor


# What a reader raises on files whose values contradict each other or have the wrong types; a
# reader's own checks raise SaescopeError first, with more precise words.
MALFORMED = (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError)


def read_sae(name: str, path: Path, **kwargs: Any) -> SAE:
    """The reader of format `name` on path; a malformed file is one SaescopeError naming it."""
    try:
        return format_module(name).load(path, **kwargs)
    except SaescopeError:
        raise
    except MALFORMED as err:
        raise SaescopeError(
            f"{path}: a {name} SAE whose files hold unexpected values "
            f"({type(err).__name__}: "
            f"{str(err).strip().splitlines()[0] if str(err).strip() else ''})"
        ) from None
