"""load_sae: one entry point for every format, local paths and `hf:REPO/PATH` specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from saescope.errors import SaescopeError
from saescope.sae.base import SAE
from saescope.sae.formats import detect_format, format_module

HF_PREFIX = "hf:"


def resolve_path(path_or_spec: str | Path) -> Path:
    """A local path for a path or an `hf:ORG/NAME[/SUBPATH][@REVISION]` spec (downloaded if needed)."""
    text = str(path_or_spec)
    if text.startswith(HF_PREFIX):
        from saescope.sae.hub import download_sae_files  # noqa: PLC0415 (huggingface_hub only when needed)

        return download_sae_files(text[len(HF_PREFIX) :])
    path = Path(text).expanduser()
    if not path.exists():
        raise SaescopeError(f"{path}: no such file or folder")
    return path


def load_sae(
    path_or_spec: str | Path,
    format: str | None = None,  # noqa: A002 (the natural name for users)
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
    path = resolve_path(path_or_spec)
    name = format or detect_format(path)
    sae = format_module(name).load(path, **kwargs)
    sae.file_format = name  # the format of these files (source_format: where the SAE came from)
    if sae.cfg.source_format is None:
        sae.cfg.source_format = name
    if sae.cfg.source_path is None:
        sae.cfg.source_path = str(path_or_spec)
    if device is not None or dtype is not None:
        sae = sae.to(device=device, dtype=dtype)
        if dtype is not None:
            sae.cfg.dtype = str(dtype).removeprefix("torch.")
    return sae.eval()
