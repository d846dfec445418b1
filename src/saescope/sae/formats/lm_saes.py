"""lm-saes / llamascopium (OpenMOSS) SAEs and transcoders, Llama Scope included.

Two layouts, one folder per SAE:
  llamascopium / lm-saes 2.x (`save_pretrained` + `cfg.save_hyperparameters`):
      config.json (sae_type, d_model, expansion_factor, act_fn, top_k, norm_activation,
      sparsity_include_decoder_norm, hook_point_in, hook_point_out, ...) and
      sae_weights.safetensors: W_E [d_model, d_sae], b_E, W_D [d_sae, d_model], b_D,
      activation_function.log_jumprelu_threshold [d_sae], dataset_average_activation_norm.<hook> [].
      Early 2.0 betas store nn.Linear names instead (see the first Llama Scope layout).
  the first Llama Scope release (lm-saes 1.x): hyperparams.json (the same fields plus d_sae,
      jump_relu_threshold (one scalar), dataset_average_activation_norm {"in", "out"},
      apply_decoder_bias_to_pre_encoder) and checkpoints/final.safetensors: encoder.weight
      [d_sae, d_model], encoder.bias, decoder.weight [d_model, d_sae], decoder.bias.
  Either may sit next to lm_config.json, whose model_name we keep.

The library's math, which we reproduce (h = hidden_pre, n = ||W_D[i]||, the decoder row norm):
  inputs are scaled by f_in = sqrt(d_model) / dataset_average_activation_norm[in] (norm_activation
  "dataset-wise"; "inference" means that was folded into the weights), outputs divided by f_out
  (the same with the output hook's norm: transcoders have two);
  h = x_scaled @ W_E + b_E; with sparsity_include_decoder_norm the activation function sees h * n
  and the result is divided by n again, so features keep the scale of h:
      relu      relu(h)
      jumprelu  h where h * n > threshold (a JumpReLU with threshold / n per feature)
      topk      h at the k largest relu(h * n)  (DecoderNormTopKSAE below)
  recon = (acts @ W_D + b_D) / f_out.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch

from saescope.errors import SaescopeError
from saescope.sae.architectures import TopKSAE, scatter_dense, topk_sparse
from saescope.sae.architectures.topk import config_k
from saescope.sae.base import SAE
from saescope.sae.config import SAEConfig
from saescope.sae.formats.files import read_json_file, read_safetensors_file, read_torch_file
from saescope.sae.registry import sae_from_tensors

CONFIG_FILENAME = "config.json"
OLD_CONFIG_FILENAME = "hyperparams.json"
LM_CONFIG_FILENAME = "lm_config.json"
# where the library looks for weights, in its order
WEIGHT_FILENAMES = (
    "sae_weights.safetensors",
    "sae_weights.pt",
    "checkpoints/pruned.safetensors",
    "checkpoints/pruned.pt",
    "checkpoints/final.safetensors",
    "checkpoints/final.pt",
)
SUPPORTED_ACT_FNS = ("relu", "jumprelu", "topk")
NORM_KEY_PREFIX = "dataset_average_activation_norm."


class DecoderNormTopKSAE(TopKSAE):
    """lm-saes's TopK with sparsity_include_decoder_norm: picks the k largest
    relu(h * ||W_dec[i]||), reports h.

    cfg.rescale_acts_by_decoder_norm is set so the choice of features survives a native save;
    SAELens then reports those features as h * ||W_dec[i]|| (reconstructions are identical).
    """

    def activation(self, hidden_pre: torch.Tensor) -> torch.Tensor:
        values, indices = topk_sparse(self.scaled_pre(hidden_pre), config_k(self.cfg))
        return scatter_dense(values / self.W_dec_norms()[indices], indices, self.d_sae)

    def encode_sparse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values, indices = super().encode_sparse(x)
        return values / self.W_dec_norms()[indices], indices

    def decoder_input(self, acts: torch.Tensor) -> torch.Tensor:
        return acts

    def decoder_input_sparse(self, values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        return values


def detect(path: Path) -> bool:
    """A folder with config.json or hyperparams.json and weights
    where the library looks for them."""
    folder = sae_folder(path)
    has_config = (folder / CONFIG_FILENAME).is_file() or (folder / OLD_CONFIG_FILENAME).is_file()
    return has_config and weights_path(folder) is not None


def load(path: Path, **_: Any) -> SAE:
    """An SAE (or transcoder) from an lm-saes / llamascopium / Llama Scope folder."""
    folder = sae_folder(path)
    cfg_path = folder / CONFIG_FILENAME
    if not cfg_path.is_file():
        cfg_path = folder / OLD_CONFIG_FILENAME
    raw = read_json_file(cfg_path)
    check_supported(raw, cfg_path)
    weights = (
        path if path.suffix in (".safetensors", ".pt") and path.is_file() else weights_path(folder)
    )
    if weights is None:
        raise SaescopeError(f"{folder}: no weights file (looked for {', '.join(WEIGHT_FILENAMES)})")
    state = read_state(weights)
    tensors = our_tensors(state, raw, weights)
    f_in, f_out = input_output_scales(raw, state, cfg_path)
    activation_tensors(tensors, state, raw, weights)
    # decode divides by the one input scale; fold the rest of the output scale into the decoder
    tensors["W_dec"] = tensors["W_dec"] * (f_in / f_out)
    tensors["b_dec"] = tensors["b_dec"] * (f_in / f_out)
    cfg = make_config(raw, tensors, folder, cfg_path)
    tensors["input_scale"] = torch.tensor(f_in)
    sae = sae_from_tensors(cfg, tensors, weights)
    if cfg.architecture == "topk" and cfg.rescale_acts_by_decoder_norm:
        own = DecoderNormTopKSAE(cfg)
        own.load_state_dict(sae.state_dict())
        sae = own
    return sae


# ---- files -------------------------------------------------------------------------------------


def sae_folder(path: Path) -> Path:
    """The SAE's folder for the folder itself or one of its weights files."""
    if path.is_dir():
        return path
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def weights_path(folder: Path) -> Path | None:
    return next((folder / name for name in WEIGHT_FILENAMES if (folder / name).is_file()), None)


def read_state(weights: Path) -> dict[str, torch.Tensor]:
    if weights.suffix == ".safetensors":
        return read_safetensors_file(weights)
    if weights.suffix == ".pt":
        checkpoint = read_torch_file(weights)
        # save_checkpoint writes {"sae": state_dict, "version": ...}
        state = checkpoint.get("sae", checkpoint) if isinstance(checkpoint, dict) else None
        if not isinstance(state, dict):
            raise SaescopeError(
                f"{weights}: expected a state dict (or {{'sae': state_dict}}), got "
                f"{type(checkpoint).__name__}"
            )
        return state
    raise SaescopeError(f"{weights}: unsupported weights file (accepted: .safetensors, .pt)")


def check_supported(raw: dict[str, Any], cfg_path: Path) -> None:
    """Clear errors for what the file describes but we cannot run as the library does."""
    sae_type = raw.get("sae_type", "sae")
    if sae_type != "sae":
        raise SaescopeError(
            f"{cfg_path}: sae_type {sae_type!r} is not supported (only 'sae': SAEs and transcoders)"
        )
    for key in ("d_model", "hook_point_in"):
        if key not in raw:
            raise SaescopeError(f"{cfg_path}: missing {key!r}; not an lm-saes config")
    act_fn = raw.get("act_fn", "relu")
    if act_fn not in SUPPORTED_ACT_FNS:
        raise SaescopeError(
            f"{cfg_path}: act_fn {act_fn!r} is not supported (accepted: "
            f"{', '.join(SUPPORTED_ACT_FNS)}); a batchtopk SAE has no inference threshold: convert "
            "it to jumprelu with the library first"
        )
    if raw.get("use_glu_encoder"):
        raise SaescopeError(f"{cfg_path}: use_glu_encoder=true is not supported")
    norm = raw.get("norm_activation", "dataset-wise")
    if norm not in ("dataset-wise", "inference", "token-wise"):
        raise SaescopeError(
            f"{cfg_path}: norm_activation {norm!r} is not supported (accepted: dataset-wise, "
            "inference, token-wise)"
        )
    is_transcoder = raw.get("hook_point_out", raw["hook_point_in"]) != raw["hook_point_in"]
    if norm == "token-wise" and is_transcoder:
        raise SaescopeError(
            f"{cfg_path}: a token-wise normalised transcoder needs its output's norm, unknown at "
            "inference"
        )
    if raw.get("apply_decoder_bias_to_pre_encoder") and is_transcoder:
        raise SaescopeError(
            f"{cfg_path}: apply_decoder_bias_to_pre_encoder is not supported for a transcoder"
        )


# ---- tensors -----------------------------------------------------------------------------------


def our_tensors(
    state: dict[str, torch.Tensor], raw: dict[str, Any], weights: Path
) -> dict[str, torch.Tensor]:
    """W_enc [d_in, d_sae], b_enc, W_dec [d_sae, d_in], b_dec from either naming, as float32."""
    if "W_E" in state:
        names = {"W_enc": "W_E", "b_enc": "b_E", "W_dec": "W_D", "b_dec": "b_D"}
    else:
        names = {
            "W_enc": "encoder.weight",
            "b_enc": "encoder.bias",
            "W_dec": "decoder.weight",
            "b_dec": "decoder.bias",
        }
    if not raw.get("use_decoder_bias", True):
        del names["b_dec"]
    missing = [name for name in names.values() if name not in state]
    if missing:
        raise SaescopeError(
            f"{weights}: missing tensor(s) {', '.join(missing)} (found: {', '.join(sorted(state))})"
        )
    tensors = {ours: state[theirs].float() for ours, theirs in names.items()}
    if "W_E" not in state:
        # nn.Linear keeps weight as [out, in]
        tensors["W_enc"], tensors["W_dec"] = tensors["W_enc"].T, tensors["W_dec"].T
    if "b_dec" not in tensors:
        tensors["b_dec"] = torch.zeros(tensors["W_dec"].shape[1])
    return tensors


def activation_tensors(
    tensors: dict[str, torch.Tensor],
    state: dict[str, torch.Tensor],
    raw: dict[str, Any],
    weights: Path,
) -> None:
    """Add the JumpReLU threshold [d_sae], divided by the decoder norms
    when the library compares h * n."""
    if raw.get("act_fn", "relu") != "jumprelu":
        return
    d_sae = tensors["W_enc"].shape[1]
    if "jump_relu_threshold" in raw:  # the first Llama Scope release: one scalar
        threshold = torch.full((d_sae,), float(raw["jump_relu_threshold"]))
    else:
        key = next(
            (
                k
                for k in ("activation_function.log_jumprelu_threshold", "log_jumprelu_threshold")
                if k in state
            ),
            None,
        )
        if key is None:
            raise SaescopeError(
                f"{weights}: a jumprelu SAE without activation_function.log_jumprelu_threshold"
            )
        threshold = state[key].float().exp()
    if raw.get("sparsity_include_decoder_norm", True):
        threshold = threshold / tensors["W_dec"].norm(dim=-1)
    tensors["threshold"] = threshold


def input_output_scales(
    raw: dict[str, Any], state: dict[str, torch.Tensor], cfg_path: Path
) -> tuple[float, float]:
    """(f_in, f_out): what inputs are multiplied by and outputs
    divided by (1 when already folded)."""
    if raw.get("norm_activation", "dataset-wise") != "dataset-wise":
        return 1.0, 1.0
    hook_in = raw["hook_point_in"]
    hook_out = raw.get("hook_point_out", hook_in)
    norms = {
        key[len(NORM_KEY_PREFIX) :]: float(value)
        for key, value in state.items()
        if key.startswith(NORM_KEY_PREFIX)
    }
    # the first release keeps them in hyperparams.json as {"in": ..., "out": ...}
    norms.update(raw.get("dataset_average_activation_norm") or {})
    norm_in = dataset_norm(norms, hook_in, "in", cfg_path)
    norm_out = dataset_norm(norms, hook_out, "out", cfg_path)
    scale = math.sqrt(raw["d_model"])
    return scale / norm_in, scale / norm_out


def dataset_norm(norms: dict[str, Any], hook: str, side: str, cfg_path: Path) -> float:
    """The dataset average activation norm of the input or output hook: a positive number."""
    value = norms.get(hook, norms.get(side))
    if value is None or not math.isfinite(value) or value <= 0:
        raise SaescopeError(
            f"{cfg_path}: norm_activation is 'dataset-wise' but the dataset average activation "
            f"norm for the {side}put ({hook}) is {value!r}; expected a positive number"
        )
    return float(value)


# ---- config ------------------------------------------------------------------------------------


def make_config(
    raw: dict[str, Any], tensors: dict[str, torch.Tensor], folder: Path, cfg_path: Path
) -> SAEConfig:
    d_in, d_sae = tensors["W_enc"].shape
    act_fn = raw.get("act_fn", "relu")
    architecture = {"relu": "standard", "jumprelu": "jumprelu", "topk": "topk"}[act_fn]
    hook_in = raw["hook_point_in"]
    hook_out = raw.get("hook_point_out", hook_in)
    norm = raw.get("norm_activation", "dataset-wise")
    normalize = {
        "dataset-wise": "expected_average_only_in",
        "token-wise": "constant_norm_rescale",
    }.get(norm, "none")
    kept = (
        "act_fn",
        "norm_activation",
        "sparsity_include_decoder_norm",
        "dataset_average_activation_norm",
        "top_k",
    )
    return SAEConfig(
        architecture=architecture,
        d_in=int(d_in),
        d_sae=int(d_sae),
        k=int(raw.get("top_k", 50)) if act_fn == "topk" else None,
        rescale_acts_by_decoder_norm=act_fn == "topk"
        and bool(raw.get("sparsity_include_decoder_norm", True)),
        # the first release could subtract the decoder bias (in normalised units) before encoding
        apply_b_dec_to_input=bool(raw.get("apply_decoder_bias_to_pre_encoder", False)),
        normalize_activations=normalize,
        model_name=model_name(folder),
        hook_name=hook_in,
        hook_name_out=hook_out if hook_out != hook_in else None,
        hook_layer=layer_of(hook_in),
        hook_layer_out=layer_of(hook_out) if hook_out != hook_in else None,
        source_format="lm_saes",
        extra={f"lm_saes_{key}": raw[key] for key in kept if key in raw}
        | {"lm_saes_config_file": cfg_path.name},
    )


def model_name(folder: Path) -> str | None:
    """model_name of lm_config.json, beside the SAE or one folder up
    (where the library's loader looks)."""
    for candidate in (folder / LM_CONFIG_FILENAME, folder.parent / LM_CONFIG_FILENAME):
        if candidate.is_file():
            name = read_json_file(candidate).get("model_name")
            return name if isinstance(name, str) else None
    return None


def layer_of(hook: str) -> int | None:
    match = re.match(r"blocks\.(\d+)\.", hook)
    return int(match.group(1)) if match else None
