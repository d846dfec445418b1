"""EleutherAI sparsify's format: cfg.json + sae.safetensors per hook point, often a folder of them.

Layout (sparsify 1.x, `SparseCoder.save_to_disk`): encoder.weight [d_sae, d_in],
encoder.bias [d_sae], W_dec [d_sae, d_in], b_dec [d_in], optional W_skip [d_in, d_in].
cfg.json: activation ("topk"), k, num_latents (0 = d_in * expansion_factor), transcode,
skip_connection, d_in. Encoding: relu(encoder(x - b_dec)) then top-k (no b_dec subtraction
for transcoders); the output adds x @ W_skip.T when there is a skip connection.
A folder of layers holds one such folder per hook point, named by the module ("layers.5").
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from saescope.errors import SaescopeError
from saescope.sae.base import SAE
from saescope.sae.config import SAEConfig
from saescope.sae.formats.files import read_json_file, read_safetensors_file
from saescope.sae.registry import sae_from_tensors

CFG_FILENAME = "cfg.json"
WEIGHTS_FILENAME = "sae.safetensors"
CONSUMED_KEYS = (
    "d_in",
    "k",
    "num_latents",
    "expansion_factor",
    "transcode",
    "skip_connection",
    "activation",
)


def is_sparsify_folder(path: Path) -> bool:
    return path.is_dir() and (path / CFG_FILENAME).is_file() and (path / WEIGHTS_FILENAME).is_file()


def layer_folders(path: Path) -> dict[str, Path]:
    """hook point name -> folder, for a folder of layers (sorted
    naturally: layers.2 before layers.10)."""
    if not path.is_dir():
        return {}
    found = {sub.name: sub for sub in path.iterdir() if is_sparsify_folder(sub)}
    return dict(sorted(found.items(), key=lambda item: natural_key(item[0])))


def natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def detect(path: Path) -> bool:
    return is_sparsify_folder(path) or bool(layer_folders(path))


def load(path: Path, layer: str | None = None, **_: Any) -> SAE:
    """One sparsify SAE: `path` is its folder, or a folder of layers plus
    layer= (optional if only one)."""
    if not is_sparsify_folder(path):
        layers = layer_folders(path)
        if layer is None:
            if len(layers) != 1:
                raise SaescopeError(
                    f"{path}: a folder of {len(layers)} sparsify SAEs; pass layer= one of "
                    f"{', '.join(layers)} "
                    f"(or load_sparsify_layers() for all)"
                )
            layer = next(iter(layers))
        if layer not in layers:
            raise SaescopeError(f"{path}: no layer {layer!r}; found {', '.join(layers) or 'none'}")
        return load_folder(layers[layer], hookpoint=layer)
    return load_folder(path, hookpoint=path.name if looks_like_hookpoint(path.name) else None)


def looks_like_hookpoint(name: str) -> bool:
    """Module paths such as "layers.5" or "layers.5.mlp" (sparsify names folders by hook point)."""
    return re.search(r"(^|\.)\d+(\.|$)", name) is not None


def load_sparsify_layers(path: str | Path) -> dict[str, SAE]:
    """Every SAE of a sparsify folder of layers: hook point name -> SAE."""
    layers = layer_folders(Path(path))
    if not layers:
        raise SaescopeError(f"{path}: no sparsify SAE folders (cfg.json + sae.safetensors) inside")
    return {name: load_folder(folder, hookpoint=name) for name, folder in layers.items()}


def load_folder(folder: Path, hookpoint: str | None = None) -> SAE:
    """One sparsify SAE folder; hookpoint is the module it was trained on, when known."""
    cfg_path, weights_path = folder / CFG_FILENAME, folder / WEIGHTS_FILENAME
    raw = read_json_file(cfg_path)
    tensors = read_safetensors_file(weights_path)
    cfg = config_from_sparsify(raw, hookpoint, cfg_path)
    ours = {
        "W_enc": tensors["encoder.weight"].T if "encoder.weight" in tensors else None,
        "b_enc": tensors.get("encoder.bias"),
        "W_dec": tensors.get("W_dec"),
        "b_dec": tensors.get("b_dec"),
        "W_skip": tensors.get("W_skip"),
    }
    ours = {name: t for name, t in ours.items() if t is not None}
    if "W_skip" in ours and not cfg.skip_connection:
        raise SaescopeError(
            f"{weights_path}: holds W_skip but {cfg_path} says skip_connection is false"
        )
    return sae_from_tensors(cfg, ours, weights_path)


def config_from_sparsify(raw: dict[str, Any], hookpoint: str | None, cfg_path: Path) -> SAEConfig:
    if "d_in" not in raw:
        raise SaescopeError(f"{cfg_path}: missing 'd_in'; a sparsify cfg.json records it")
    activation = raw.get("activation", "topk")
    if activation != "topk":
        raise SaescopeError(
            f"{cfg_path}: sparsify activation {activation!r} is not supported; only 'topk'"
        )
    d_in = raw["d_in"]
    d_sae = raw.get("num_latents") or d_in * raw.get("expansion_factor", 32)
    transcode = bool(raw.get("transcode", False))
    try:
        return SAEConfig(
            architecture="topk",
            d_in=d_in,
            d_sae=d_sae,
            k=raw.get("k", 32),
            apply_b_dec_to_input=not transcode,
            transcoder=transcode,
            skip_connection=bool(raw.get("skip_connection", False)),
            # sparsify names the module: an SAE reads its output, a transcoder
            # maps its input to its output
            hook_name=hookpoint,
            source_format="sparsify",
            source_path=str(cfg_path.parent),
            hook_name_out=hookpoint if transcode else None,
            extra={key: value for key, value in raw.items() if key not in CONSUMED_KEYS},
        )
    except SaescopeError as err:
        raise SaescopeError(f"{cfg_path}: {err}") from None
