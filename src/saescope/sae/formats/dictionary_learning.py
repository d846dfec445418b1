"""dictionary_learning (saprmarks/dictionary_learning) SAEs: ae.pt + config.json per trainer folder.

`trainSAE` writes `ae.pt` (the dictionary's state_dict) and `config.json` ({"trainer": {...,
"dict_class", "layer", "lm_name", "submodule_name", "k", ...}, "buffer": {...}}). The tensor
names depend on the dictionary class (d = activation_dim, F = dict_size):

    AutoEncoder             bias [d], encoder.weight [F, d], encoder.bias [F], decoder.weight [d, F]
    AutoEncoderNew          encoder.weight, encoder.bias, decoder.weight, decoder.bias [d]
    GatedAutoEncoder        decoder_bias [d], encoder.weight, r_mag, gate_bias, mag_bias [F], decoder.weight
    AutoEncoderTopK         encoder.weight, encoder.bias, decoder.weight, b_dec [d], k, threshold
    BatchTopKSAE            the same as AutoEncoderTopK (threshold: the inference threshold)
    MatryoshkaBatchTopKSAE  W_enc [d, F], b_enc, W_dec [F, d], b_dec, k, threshold, group_sizes
    JumpReluAutoEncoder     W_enc [d, F], b_enc, W_dec [F, d], b_dec, threshold [F]

We reproduce what `dictionary_learning.utils.load_dictionary` gives: an AutoEncoder has its
decoder columns normalised on load (its from_pretrained default), the encoder rescaled to
match. Older releases without config.json are recognised from their tensor names.
Activation normalisation needs nothing here: trainSAE folds its norm_factor into the biases.
"""

from __future__ import annotations

from itertools import accumulate
from pathlib import Path
from typing import Any

import torch

from saescope.errors import SaescopeError
from saescope.sae.base import SAE
from saescope.sae.config import SAEConfig
from saescope.sae.formats.files import read_json_file, read_torch_file
from saescope.sae.registry import sae_from_tensors

WEIGHTS_FILENAME = "ae.pt"
CFG_FILENAME = "config.json"

# dict_class -> (our architecture, subtracts b_dec before encoding, source name -> our name)
DICT_CLASSES: dict[str, tuple[str, bool, dict[str, str]]] = {
    "AutoEncoder": ("standard", True, {"bias": "b_dec", "encoder.weight": "W_enc.T", "encoder.bias": "b_enc", "decoder.weight": "W_dec.T"}),
    "AutoEncoderNew": ("standard", False, {"encoder.weight": "W_enc.T", "encoder.bias": "b_enc", "decoder.weight": "W_dec.T", "decoder.bias": "b_dec"}),
    "GatedAutoEncoder": ("gated", True, {
        "decoder_bias": "b_dec", "encoder.weight": "W_enc.T", "decoder.weight": "W_dec.T",
        "r_mag": "r_mag", "gate_bias": "b_gate", "mag_bias": "b_mag",
    }),
    "AutoEncoderTopK": ("topk", True, {"encoder.weight": "W_enc.T", "encoder.bias": "b_enc", "decoder.weight": "W_dec.T", "b_dec": "b_dec"}),
    "BatchTopKSAE": ("batchtopk", True, {
        "encoder.weight": "W_enc.T", "encoder.bias": "b_enc", "decoder.weight": "W_dec.T", "b_dec": "b_dec", "threshold": "threshold",
    }),
    "MatryoshkaBatchTopKSAE": ("matryoshka_batchtopk", True, {
        "W_enc": "W_enc", "b_enc": "b_enc", "W_dec": "W_dec", "b_dec": "b_dec", "threshold": "threshold",
    }),
    "JumpReluAutoEncoder": ("jumprelu", False, {"W_enc": "W_enc", "b_enc": "b_enc", "W_dec": "W_dec", "b_dec": "b_dec", "threshold": "threshold"}),
}  # fmt: skip


# a tensor name only that class has, checked in this order (Matryoshka's names include JumpReLU's)
GUESS_MARKERS = (
    ("GatedAutoEncoder", "r_mag"),
    ("MatryoshkaBatchTopKSAE", "group_sizes"),
    ("JumpReluAutoEncoder", "W_enc"),
    ("AutoEncoder", "bias"),
    ("AutoEncoderNew", "decoder.bias"),
)


def detect(path: Path) -> bool:
    """A trainer folder with ae.pt (its config.json, if any, has a
    "trainer" section), or such an ae.pt."""
    folder, weights = split_path(path)
    if weights is None or not weights.is_file():
        return False
    if weights.name != WEIGHTS_FILENAME and not (folder / CFG_FILENAME).is_file():
        return False  # another .pt file (checkpoints/ae_<step>.pt sit one level below the config)
    cfg_path = config_path(folder)
    if cfg_path is None:
        return weights.name == WEIGHTS_FILENAME
    try:
        return "trainer" in read_json_file(cfg_path)
    except SaescopeError:
        return True  # an unreadable config.json next to ae.pt: still ours, and load() says what is wrong


def load(path: Path, **_: Any) -> SAE:
    """An SAE from a dictionary_learning trainer folder, its ae.pt, or a
    checkpoints/ae_<step>.pt."""
    folder, weights = split_path(path)
    if weights is None:
        raise SaescopeError(f"{path}: no {WEIGHTS_FILENAME} here")
    state = read_torch_file(weights)
    if not isinstance(state, dict):
        raise SaescopeError(f"{weights}: expected a state dict, got {type(state).__name__}")
    cfg_path = config_path(folder)
    trainer = trainer_config(cfg_path) if cfg_path else {}
    dict_class = trainer.get("dict_class") or guess_dict_class(state, weights)
    if dict_class not in DICT_CLASSES:
        raise SaescopeError(
            f"{cfg_path}: dict_class {dict_class!r} is not supported (accepted: "
            f"{', '.join(DICT_CLASSES)})"
        )
    tensors = our_tensors(state, dict_class, weights)
    cfg = make_config(dict_class, tensors, state, trainer, cfg_path or weights)
    sae = sae_from_tensors(cfg, tensors, weights)
    if dict_class == "AutoEncoder":
        # load_dictionary -> AutoEncoder.from_pretrained(normalize_decoder=True): unit decoder
        # columns, norms moved into the encoder; reconstructions unchanged, acts rescaled
        sae.fold_W_dec_norm()
    return sae


def split_path(path: Path) -> tuple[Path, Path | None]:
    """(trainer folder, weights file) for a folder, an ae.pt, or checkpoints/ae_<step>.pt."""
    if path.is_dir():
        return path, path / WEIGHTS_FILENAME
    if path.suffix != ".pt":
        return path.parent, None
    folder = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return folder, path


def config_path(folder: Path) -> Path | None:
    path = folder / CFG_FILENAME
    return path if path.is_file() else None


def trainer_config(cfg_path: Path) -> dict[str, Any]:
    raw = read_json_file(cfg_path)
    trainer = raw.get("trainer")
    if not isinstance(trainer, dict):
        raise SaescopeError(
            f'{cfg_path}: no "trainer" section; not a dictionary_learning config.json'
        )
    buffer = raw.get("buffer")
    return {**trainer, "buffer": buffer} if isinstance(buffer, dict) else trainer


def guess_dict_class(state: dict[str, Any], weights: Path) -> str:
    """The dictionary class from tensor names alone (folders without config.json)."""
    if "k" in state and "group_sizes" not in state:
        # TopK and BatchTopK share tensor names; only config.json tells them apart
        raise SaescopeError(
            f"{weights}: a TopK or BatchTopK dictionary (same tensor names) without {CFG_FILENAME} "
            "to say which"
        )
    for dict_class, marker in GUESS_MARKERS:
        if marker in state:
            return dict_class
    raise SaescopeError(
        f"{weights}: tensor names {', '.join(sorted(state))} match no dictionary_learning "
        "dictionary class"
    )


def our_tensors(state: dict[str, Any], dict_class: str, weights: Path) -> dict[str, torch.Tensor]:
    """Rename (and transpose where the source stores nn.Linear
    weights) to W_enc [d_in, d_sae], ..."""
    names = DICT_CLASSES[dict_class][2]
    missing = [name for name in names if not isinstance(state.get(name), torch.Tensor)]
    if missing:
        raise SaescopeError(
            f"{weights}: missing tensor(s) {', '.join(missing)} for a {dict_class} (found: "
            f"{', '.join(sorted(state))})"
        )
    tensors = {}
    for source, ours in names.items():
        tensor = state[source]
        if ours.endswith(".T"):
            # nn.Linear keeps weight as [out, in]
            ours, tensor = ours[:-2], tensor.T
        tensors[ours] = tensor
    if "threshold" in tensors and DICT_CLASSES[dict_class][0] != "jumprelu":
        tensors["threshold"] = tensors["threshold"].reshape(())  # one global threshold
    return tensors


def make_config(
    dict_class: str,
    tensors: dict[str, torch.Tensor],
    state: dict[str, Any],
    trainer: dict[str, Any],
    source: Path,
) -> SAEConfig:
    architecture, subtracts_b_dec, _ = DICT_CLASSES[dict_class]
    d_in, d_sae = tensors["W_enc"].shape
    k = None
    if architecture in ("topk", "batchtopk", "matryoshka_batchtopk"):
        # load_dictionary passes config's k; the state dict's k buffer must agree with it
        k = trainer.get("k", int(state["k"]) if "k" in state else None)
        if "k" in state and k != int(state["k"]):
            raise SaescopeError(f"{source}: k={k} but the weights' k buffer is {int(state['k'])}")
    widths = None
    if architecture == "matryoshka_batchtopk":
        group_sizes = state.get("group_sizes", trainer.get("group_sizes"))
        if group_sizes is None:
            raise SaescopeError(f"{source}: a MatryoshkaBatchTopKSAE without group_sizes")
        widths = list(accumulate(int(size) for size in group_sizes))
    return SAEConfig(
        architecture=architecture,
        d_in=int(d_in),
        d_sae=int(d_sae),
        k=k,
        matryoshka_widths=widths,
        apply_b_dec_to_input=subtracts_b_dec,
        source_format="dictionary_learning",
        **metadata(trainer),
    )


def metadata(trainer: dict[str, Any]) -> dict[str, Any]:
    """Model, hook point and context size from the trainer config, kept raw in `extra` too."""
    layer = trainer.get("layer")
    out: dict[str, Any] = {"model_name": trainer.get("lm_name")}
    if isinstance(layer, int):
        out["hook_layer"] = layer
        out["hook_name"] = hook_name(layer, trainer.get("submodule_name"))
    buffer = trainer.get("buffer") or {}
    if isinstance(buffer.get("ctx_len"), int):
        out["context_size"] = buffer["ctx_len"]
    kept = ("dict_class", "trainer_class", "submodule_name", "norm_factor", "lm_name", "layer")
    out["extra"] = {
        f"dictionary_learning_{key}": trainer[key] for key in kept if trainer.get(key) is not None
    }
    return out


def hook_name(layer: int, submodule_name: str | None) -> str | None:
    """dictionary_learning trains on a layer's output (the residual stream)
    unless the submodule says otherwise."""
    name = (submodule_name or "resid").lower()
    if "resid" in name:
        return f"blocks.{layer}.hook_resid_post"
    if "mlp" in name:
        return f"blocks.{layer}.hook_mlp_out"
    if "attn" in name or "attention" in name:
        return f"blocks.{layer}.hook_attn_out"
    return None
