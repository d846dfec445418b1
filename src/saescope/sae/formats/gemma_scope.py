"""Gemma Scope SAEs (Google DeepMind, Gemma 2): one numpy params.npz per SAE, JumpReLU.

Layout: W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc [d_sae], b_dec [d_in], threshold [d_sae]
(float32), at `gemma-scope-<size>-<pt|it>-<res|mlp|att>[-canonical]/layer_<L>/width_<W>/
average_l0_<N>/params.npz`. Math (the release's tutorial): pre = x @ W_enc + b_enc;
acts = relu(pre) where pre > threshold, else 0; recon = acts @ W_dec + b_dec. No input
normalisation, no b_dec subtraction. The release path, when present, gives model and hook point.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from saescope.errors import SaescopeError
from saescope.sae.base import SAE
from saescope.sae.config import SAEConfig
from saescope.sae.formats.files import require_file
from saescope.sae.registry import sae_from_tensors

WEIGHTS_FILENAME = "params.npz"
TENSOR_NAMES = ("W_enc", "W_dec", "b_enc", "b_dec", "threshold")
# the site in a repository name -> TransformerLens hook (att SAEs read hook_z flattened over heads)
SITE_HOOKS = {
    "res": "blocks.{layer}.hook_resid_post",
    "mlp": "blocks.{layer}.hook_mlp_out",
    "att": "blocks.{layer}.attn.hook_z",
}
RELEASE_NAME = re.compile(r"gemma-scope-(?P<size>\d+b)-(?P<variant>pt|it)-(?P<site>res|mlp|att)\b")
LAYER_FOLDER = re.compile(r"^layer_(?P<layer>\d+)$")


def detect(path: Path) -> bool:
    """A params.npz (or any .npz file), or a folder holding params.npz."""
    weights = weights_file(path)
    return weights.suffix == ".npz" and weights.is_file()


def load(path: Path, **_: Any) -> SAE:
    """A JumpReLU SAE from a Gemma Scope params.npz (or its folder)."""
    weights = weights_file(path)
    tensors = read_npz(weights)
    d_in, d_sae = tensors["W_enc"].shape
    cfg = SAEConfig(
        architecture="jumprelu",
        d_in=int(d_in),
        d_sae=int(d_sae),
        apply_b_dec_to_input=False,
        source_format="gemma_scope",
        **metadata_from_path(weights),
    )
    return sae_from_tensors(cfg, tensors, weights)


def weights_file(path: Path) -> Path:
    return path / WEIGHTS_FILENAME if path.is_dir() else path


def read_npz(path: Path) -> dict[str, torch.Tensor]:
    """The five arrays of params.npz as float32 tensors; a clear error if
    truncated, corrupt or incomplete."""
    require_file(path)
    try:
        with np.load(path) as npz:
            # SAELens matches names case-insensitively; some copies spell them w_enc, ...
            arrays = {name.lower(): npz[name] for name in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as err:
        size = path.stat().st_size
        raise SaescopeError(
            f"{path}: cannot read the npz file ({size} bytes; truncated or corrupt?): {err}"
        ) from None
    missing = [name for name in TENSOR_NAMES if name.lower() not in arrays]
    if missing:
        raise SaescopeError(
            f"{path}: missing array(s) {', '.join(missing)} (found: "
            f"{', '.join(sorted(arrays)) or 'none'})"
        )
    return {
        name: torch.from_numpy(np.asarray(arrays[name.lower()], dtype=np.float32))
        for name in TENSOR_NAMES
    }


def metadata_from_path(path: Path) -> dict[str, Any]:
    """Model (gemma-2-<size>[-it]) and hook point from the release
    path; nothing if it is not one."""
    release = next((m for part in path.parts if (m := RELEASE_NAME.search(part))), None)
    layer = next((int(m["layer"]) for part in path.parts if (m := LAYER_FOLDER.match(part))), None)
    if release is None:
        return {"hook_layer": layer}
    model = f"gemma-2-{release['size']}" + ("-it" if release["variant"] == "it" else "")
    out: dict[str, Any] = {"model_name": model, "hook_layer": layer}
    if layer is not None:
        out["hook_name"] = SITE_HOOKS[release["site"]].format(layer=layer)
    return out
