"""The native SAE format: SAELens's layout (cfg.json + sae_weights.safetensors [+
sparsity.safetensors]).

Our own provenance (hook layer, source format, ...) rides in cfg.json's "metadata", which
SAELens keeps; so a folder we write loads in SAELens, and a SAELens folder loads here.
"""

from __future__ import annotations

from pathlib import Path

import torch

from saescope.sae.base import SAE
from saescope.sae.formats import saelens


def save_sae(sae: SAE, path: str | Path, log_feature_sparsity: torch.Tensor | None = None) -> Path:
    """Write sae to folder `path` in the native format; returns the folder.

    log_feature_sparsity: optional log10 feature densities [d_sae] (sparsity.safetensors).
    """
    return saelens.save(sae, path, log_feature_sparsity)


def load_native(path: str | Path) -> SAE:
    """Read a native (SAELens-layout) folder."""
    return saelens.load(Path(path))
