"""OpenAI's sparse_autoencoder checkpoints (GPT-2 small SAEs): one torch .pt state dict per SAE.

Layout (`Autoencoder.state_dict()` of openai/sparse_autoencoder's model.py):
    encoder.weight [d_sae, d_in], decoder.weight [d_in, d_sae] (absent when tied),
    pre_bias [d_in], latent_bias [d_sae], activation ("ReLU" or "TopK"),
    activation_state_dict ({"k": int, "postact_fn": "ReLU"} for TopK), plus training statistics.
Math: latents = activation((x - pre_bias) @ encoder.weight.T + latent_bias);
recons = latents @ decoder.weight.T + pre_bias. A TopK checkpoint (v5) also layer-norms its
input, (x - mean) / (std + 1e-5), and decode maps back with * std + mean: the source decides
this from the activation name alone, and so do we.
Released paths look like `<location>[_v4|_v5_32k|_v5_128k]/autoencoders/<layer>.pt`; the
location names a GPT-2 small hook point, which gives the metadata.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from saescope.errors import SaescopeError
from saescope.sae.base import SAE
from saescope.sae.config import SAEConfig
from saescope.sae.formats.files import read_torch_file
from saescope.sae.registry import sae_from_tensors

REQUIRED_KEYS = ("encoder.weight", "pre_bias", "latent_bias")
# the locations of sparse_autoencoder/paths.py -> TransformerLens hook (as its README maps them)
LOCATION_HOOKS = {
    "mlp_post_act": "blocks.{layer}.mlp.hook_post",
    "resid_delta_attn": "blocks.{layer}.hook_attn_out",
    "resid_post_attn": "blocks.{layer}.hook_resid_mid",
    "resid_delta_mlp": "blocks.{layer}.hook_mlp_out",
    "resid_post_mlp": "blocks.{layer}.hook_resid_post",
}
RELEASE_PATH = re.compile(
    r"(?P<location>[a-z_]+?)(?:_v4|_v5_32k|_v5_128k)?/autoencoders/(?P<layer>\d+)\.pt$"
)


def detect(path: Path) -> bool:
    """A .pt file in a release's `autoencoders/` folder, or one holding OpenAI's tensor names."""
    if not (path.is_file() and path.suffix in (".pt", ".pth")):
        return False
    if path.parent.name == "autoencoders":
        return True
    try:
        # mmap: only the pickle's key list is read, not the weights
        state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # anything unreadable is simply not ours to claim
        return False
    return isinstance(state, dict) and all(key in state for key in REQUIRED_KEYS)


def load(path: Path, **_: Any) -> SAE:
    """An SAE from an OpenAI sparse_autoencoder .pt file."""
    if path.is_dir():
        raise SaescopeError(
            f"{path}: an OpenAI sparse_autoencoder SAE is a single .pt file; pass the file"
        )
    state = read_torch_file(path)
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED_KEYS):
        found = (
            ", ".join(sorted(map(str, state))) if isinstance(state, dict) else type(state).__name__
        )
        raise SaescopeError(
            f"{path}: not an OpenAI sparse_autoencoder state dict; needs "
            f"{', '.join(REQUIRED_KEYS)} (found: {found})"
        )
    cfg = config_from_state(state, path)
    return sae_from_tensors(cfg, tensors_from_state(state, path), path)


def config_from_state(state: dict[str, Any], path: Path) -> SAEConfig:
    d_sae, d_in = state["encoder.weight"].shape
    activation = state.get("activation", "ReLU")  # from_state_dict's default
    if activation == "TopK":
        k = (state.get("activation_state_dict") or {}).get("k")
        if not isinstance(k, int):
            raise SaescopeError(
                f"{path}: a TopK checkpoint without an integer activation_state_dict['k'] (got "
                f"{k!r})"
            )
        postact = (state.get("activation_state_dict") or {}).get("postact_fn", "ReLU")
        if postact != "ReLU":
            raise SaescopeError(
                f"{path}: TopK with postact_fn {postact!r} is not supported (only 'ReLU')"
            )
        architecture, normalize = "topk", "layer_norm"
    elif activation == "ReLU":
        architecture, normalize, k = "standard", "none", None
    else:
        raise SaescopeError(
            f"{path}: activation {activation!r} is not supported (accepted: 'ReLU', 'TopK')"
        )
    return SAEConfig(
        architecture=architecture,
        d_in=int(d_in),
        d_sae=int(d_sae),
        k=k,
        apply_b_dec_to_input=True,  # pre_bias is subtracted before encoding
        normalize_activations=normalize,
        source_format="openai",
        **metadata_from_path(path),
    )


def tensors_from_state(state: dict[str, Any], path: Path) -> dict[str, torch.Tensor]:
    encoder = state["encoder.weight"]  # [d_sae, d_in]
    # tied checkpoints have no decoder: the decoder is the encoder's transpose
    decoder = state.get("decoder.weight", encoder.T)  # [d_in, d_sae]
    if not all(isinstance(state[key], torch.Tensor) for key in REQUIRED_KEYS) or not isinstance(
        decoder, torch.Tensor
    ):
        raise SaescopeError(
            f"{path}: encoder.weight, decoder.weight, pre_bias and latent_bias must be tensors"
        )
    return {
        "W_enc": encoder.T,  # [d_in, d_sae]
        "b_enc": state["latent_bias"],
        "W_dec": decoder.T,  # [d_sae, d_in]
        "b_dec": state["pre_bias"],
    }


def metadata_from_path(path: Path) -> dict[str, Any]:
    """Model and hook point from a release path; nothing for a file saved elsewhere."""
    match = RELEASE_PATH.search(path.as_posix())
    if not match or match["location"] not in LOCATION_HOOKS:
        return {}
    location, layer = match["location"], int(match["layer"])
    return {
        "model_name": "gpt2",
        "hook_name": LOCATION_HOOKS[location].format(layer=layer),
        "hook_layer": layer,
    }
