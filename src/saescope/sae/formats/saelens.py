"""SAELens's on-disk format (cfg.json + sae_weights.safetensors [+
sparsity.safetensors]), read and written.

This is also saescope's native format. Reading follows SAELens 6.x (`SAE.load_from_disk`)
and its pre-6.0 flat configs; writing produces what SAELens 6 loads with the same outputs.

SAELens architectures and how they map here:
    standard, topk, jumprelu, gated            the same classes
    batchtopk, matryoshka_batchtopk            training checkpoints: topk_threshold -> threshold
    transcoder, skip_transcoder                standard with d_out (+ W_skip)
    jumprelu_transcoder, jumprelu_skip_transcoder   jumprelu with d_out (+ W_skip)
SAELens stores a BatchTopK SAE for inference as a JumpReLU with the global threshold on every
feature; we write it that way too and keep `saescope_architecture` in the metadata so it
loads back here as BatchTopK.

Inputs are [..., d_in]: for hook_z SAEs (reshape_activations "hook_z", kept in cfg.json) pass
the heads flattened, [..., n_heads * d_head].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from saescope.errors import SaescopeError
from saescope.fileio import save_tensors, write_json
from saescope.sae.base import SAE
from saescope.sae.config import ARCHITECTURES, SAEConfig
from saescope.sae.formats.files import read_json_file, read_safetensors_file
from saescope.sae.registry import sae_from_tensors

CFG_FILENAME = "cfg.json"
WEIGHTS_FILENAME = "sae_weights.safetensors"
SPARSITY_FILENAME = "sparsity.safetensors"

# SAELens architecture -> (our architecture, is a transcoder, has a skip connection)
SAELENS_ARCHITECTURES: dict[str, tuple[str, bool, bool]] = {
    "standard": ("standard", False, False),
    "topk": ("topk", False, False),
    "jumprelu": ("jumprelu", False, False),
    "gated": ("gated", False, False),
    "batchtopk": ("batchtopk", False, False),
    "matryoshka_batchtopk": ("matryoshka_batchtopk", False, False),
    "transcoder": ("standard", True, False),
    "skip_transcoder": ("standard", True, True),
    "jumprelu_transcoder": ("jumprelu", True, False),
    "jumprelu_skip_transcoder": ("jumprelu", True, True),
    # not in SAELens 6.54 (it has no TopK or gated transcoders): what we
    # write for them, read only here
    "topk_transcoder": ("topk", True, False),
    "topk_skip_transcoder": ("topk", True, True),
    "gated_transcoder": ("gated", True, False),
    "gated_skip_transcoder": ("gated", True, True),
}

# keys SAELens keeps under "metadata" (6.x) or at the top level (before 6.0) that map to our fields
METADATA_FIELDS = (
    "model_name",
    "hook_name",
    "hook_name_out",
    "hook_head_index",
    "context_size",
    "dataset_path",
    "prepend_bos",
)
# our provenance fields that SAELens has no key for: written into
# "metadata", which SAELens keeps as is
OUR_METADATA_FIELDS = ("hook_layer", "hook_layer_out", "source_format", "source_path")
# other keys SAELens keeps in "metadata"; pre-6.0 configs have them at the top level
SAELENS_METADATA_KEYS = (
    "model_class_name", "model_from_pretrained_kwargs", "exclude_special_tokens", "neuronpedia_id", "seqpos_slice",
    "hook_head_index_out", "hf_hook_name", "hf_hook_name_out", "sae_lens_version", "sae_lens_training_version",
)  # fmt: skip
# pre-6.0 names
RENAMED_KEYS = {
    "hook_point": "hook_name",
    "hook_point_layer": "hook_layer",
    "hook_point_head_index": "hook_head_index",
}
# top-level keys consumed into SAEConfig fields (or regenerated on save)
TOP_LEVEL_FIELDS = (
    "architecture", "d_in", "d_sae", "d_out", "dtype", "device", "apply_b_dec_to_input",
    "normalize_activations", "k", "rescale_acts_by_decoder_norm", "matryoshka_widths", "metadata",
)  # fmt: skip


# ---- detection and reading ----------------------------------------------------------------------


def detect(path: Path) -> bool:
    return path.is_dir() and (path / CFG_FILENAME).is_file() and (path / WEIGHTS_FILENAME).is_file()


def load(path: Path, **_: Any) -> SAE:
    """An SAE from a SAELens folder (or from its cfg.json / weights file)."""
    folder = path if path.is_dir() else path.parent
    cfg_path, weights_path = folder / CFG_FILENAME, folder / WEIGHTS_FILENAME
    raw = read_json_file(cfg_path)
    tensors = read_safetensors_file(weights_path)
    cfg = config_from_saelens(raw, cfg_path)
    rescaled = bool(raw.get("rescale_acts_by_decoder_norm", False))
    tensors = tensors_from_saelens(tensors, cfg, weights_path, rescaled)
    cfg = restore_our_architecture(cfg, tensors)
    sae = sae_from_tensors(cfg, tensors, weights_path)
    sparsity_path = folder / SPARSITY_FILENAME
    if sparsity_path.is_file():
        sae.log_feature_sparsity = read_sparsity(sparsity_path, cfg.d_sae)
    return sae


def config_from_saelens(raw: dict[str, Any], cfg_path: Path) -> SAEConfig:
    """SAELens's cfg.json (6.x nested metadata or pre-6.0 flat) ->
    SAEConfig, unknown keys kept in extra."""
    raw = {RENAMED_KEYS.get(key, key): value for key, value in raw.items()}
    metadata = {
        RENAMED_KEYS.get(key, key): value for key, value in (raw.get("metadata") or {}).items()
    }
    # pre-6.0 configs keep provenance at the top level
    for key in (*METADATA_FIELDS, *OUR_METADATA_FIELDS, *SAELENS_METADATA_KEYS):
        if key in raw and key not in metadata:
            metadata[key] = raw.pop(key)
    for name in ("d_in", "d_sae"):
        if name not in raw:
            raise SaescopeError(
                f"{cfg_path}: missing {name!r}; a SAELens cfg.json needs d_in and d_sae"
            )
    saelens_arch = raw.get("architecture") or legacy_architecture(raw)
    known = SAELENS_ARCHITECTURES.get(saelens_arch)
    if known is None and saelens_arch in ARCHITECTURES:
        known = (saelens_arch, False, False)  # a plug-in architecture, written under its own name
    if known is None:
        raise SaescopeError(
            f"{cfg_path}: unknown or unsupported SAELens architecture {saelens_arch!r}; "
            f"supported: {', '.join(SAELENS_ARCHITECTURES)}"
        )
    architecture, is_transcoder, has_skip = known
    normalize = raw.get("normalize_activations", "none")
    if isinstance(normalize, bool) or normalize is None:  # pre-6.0 boolean form
        normalize = "expected_average_only_in" if normalize else "none"
    extra = {key: value for key, value in raw.items() if key not in TOP_LEVEL_FIELDS}
    known_metadata = {*METADATA_FIELDS, *OUR_METADATA_FIELDS}
    unknown_metadata = {key: value for key, value in metadata.items() if key not in known_metadata}
    if unknown_metadata:
        extra["metadata"] = unknown_metadata
    if saelens_arch != architecture:
        extra["saelens_architecture"] = saelens_arch
    try:
        return SAEConfig(
            architecture=architecture,
            d_in=raw["d_in"],
            d_sae=raw["d_sae"],
            d_out=raw.get("d_out") if is_transcoder else None,
            dtype=str(raw.get("dtype", "float32")).removeprefix("torch."),
            apply_b_dec_to_input=bool(raw.get("apply_b_dec_to_input", not is_transcoder)),
            normalize_activations=normalize,
            # SAELens transcoders do not undo the input normalisation in decode
            denormalize_outputs=not is_transcoder,
            k=saelens_k(raw, architecture),
            # only TopK keeps the option; BatchTopK checkpoints are folded on reading (below)
            rescale_acts_by_decoder_norm=architecture == "topk"
            and bool(raw.get("rescale_acts_by_decoder_norm", False)),
            matryoshka_widths=raw.get("matryoshka_widths"),
            transcoder=is_transcoder,
            skip_connection=has_skip,
            **{key: metadata.get(key) for key in (*METADATA_FIELDS, *OUR_METADATA_FIELDS)},
            extra=extra,
        )
    except SaescopeError as err:
        raise SaescopeError(f"{cfg_path}: {err}") from None


def legacy_architecture(raw: dict[str, Any]) -> str:
    """Pre-6.0 configs without `architecture`: topk if activation_fn says so, else standard."""
    kwargs = raw.get("activation_fn_kwargs") or {}
    if raw.get("activation_fn") == "topk" and kwargs.get("k") is not None:
        raw["k"] = kwargs["k"]
        return "topk"
    return "standard"


def saelens_k(raw: dict[str, Any], architecture: str) -> int | None:
    if architecture not in ("topk", "batchtopk", "matryoshka_batchtopk"):
        return None
    k = raw.get("k", 100)  # SAELens's default
    # BatchTopK's k is an average and may be fractional in SAELens; we keep the nearest integer
    return max(1, round(k)) if isinstance(k, int | float) and not isinstance(k, bool) else k


def tensors_from_saelens(
    tensors: dict[str, torch.Tensor], cfg: SAEConfig, weights_path: Path, rescaled: bool = False
) -> dict[str, torch.Tensor]:
    """Rename / convert SAELens's stored tensors to ours (thresholds, finetuning scaling factor).

    rescaled: the file's rescale_acts_by_decoder_norm (BatchTopK
    checkpoints get the norms folded in).
    """
    tensors = dict(tensors)
    if (
        "log_threshold" in tensors and "threshold" not in tensors
    ):  # older JumpReLU training checkpoints
        tensors["threshold"] = tensors.pop("log_threshold").exp()
    if "topk_threshold" in tensors:  # BatchTopK training checkpoints
        tensors["threshold"] = tensors.pop("topk_threshold").reshape(())
        if rescaled:
            fold_W_dec_norm_into(tensors)  # what SAELens does when it saves one for inference
    # pre-6.0 finetuning scaling factor: decode used (acts * s) @ W_dec, the same as acts @ (s[:,
    # None] * W_dec)
    for name in ("scaling_factor", "finetuning_scaling_factor"):
        if name in tensors:
            scale = tensors.pop(name)
            if "W_dec" in tensors and scale.shape == (cfg.d_sae,):
                tensors["W_dec"] = tensors["W_dec"] * scale.to(tensors["W_dec"].dtype)[:, None]
            elif scale.numel() and not torch.allclose(scale, torch.ones_like(scale)):
                raise SaescopeError(
                    f"{weights_path}: {name} has shape {list(scale.shape)}, expected [{cfg.d_sae}]"
                )
    return tensors


def fold_W_dec_norm_into(tensors: dict[str, torch.Tensor]) -> None:
    """W_enc, b_enc *= ||W_dec rows||; W_dec rows /= their norm (outputs
    unchanged for rescaled top-k)."""
    norms = tensors["W_dec"].norm(dim=-1).clamp_min(1e-8)  # [d_sae]
    tensors["W_enc"] = tensors["W_enc"] * norms
    tensors["b_enc"] = tensors["b_enc"] * norms
    tensors["W_dec"] = tensors["W_dec"] / norms[:, None]


def restore_our_architecture(cfg: SAEConfig, tensors: dict[str, torch.Tensor]) -> SAEConfig:
    """A JumpReLU that we wrote from a BatchTopK SAE becomes a BatchTopK SAE again."""
    ours = (cfg.extra.get("metadata") or {}).get("saescope_architecture")
    cfg.extra.pop("saelens_architecture", None)
    if cfg.architecture != "jumprelu" or ours not in ("batchtopk", "matryoshka_batchtopk"):
        return cfg
    threshold = tensors.get("threshold")
    if (
        threshold is None
        or threshold.numel() == 0
        or not torch.all(threshold == threshold.reshape(-1)[0])
    ):
        return cfg  # thresholds were changed since: it is a JumpReLU now
    tensors["threshold"] = threshold.reshape(-1)[0].clone()
    metadata = dict(cfg.extra["metadata"])
    k = metadata.pop("saescope_k", None)
    widths = metadata.pop("saescope_matryoshka_widths", None)
    metadata.pop("saescope_architecture")
    extra = (
        {**cfg.extra, "metadata": metadata}
        if metadata
        else {key: v for key, v in cfg.extra.items() if key != "metadata"}
    )
    return cfg.replace(architecture=ours, k=k, matryoshka_widths=widths, extra=extra)


def read_sparsity(path: Path, d_sae: int) -> torch.Tensor:
    """log10 feature densities [d_sae] from sparsity.safetensors."""
    tensors = read_safetensors_file(path)
    if "sparsity" not in tensors or tuple(tensors["sparsity"].shape) != (d_sae,):
        shapes = {name: list(t.shape) for name, t in tensors.items()}
        raise SaescopeError(
            f"{path}: expected a tensor 'sparsity' of shape [{d_sae}], found {shapes}"
        )
    return tensors["sparsity"]


# ---- writing ------------------------------------------------------------------------------------


def saelens_architecture_name(cfg: SAEConfig) -> str:
    """The SAELens architecture name that loads an SAE of this config."""
    if cfg.is_transcoder or cfg.skip_connection:
        if cfg.apply_b_dec_to_input:
            raise SaescopeError(
                "SAELens transcoders cannot subtract b_dec from the input (apply_b_dec_to_input)"
            )
        # BatchTopK transcoders are written as SAELens writes BatchTopK: a JumpReLU
        arch = (
            "jumprelu"
            if cfg.architecture in ("batchtopk", "matryoshka_batchtopk")
            else cfg.architecture
        )
        base = "transcoder" if arch == "standard" else f"{arch}_transcoder"
        return base.replace("transcoder", "skip_transcoder") if cfg.skip_connection else base
    if cfg.architecture in ("batchtopk", "matryoshka_batchtopk"):
        return "jumprelu"  # what SAELens itself saves a BatchTopK SAE as for inference
    return cfg.architecture


def config_to_saelens(cfg: SAEConfig) -> dict[str, Any]:
    """SAEConfig -> SAELens 6 cfg.json (our extra provenance inside "metadata")."""
    extra = dict(cfg.extra)
    extra.pop("saelens_architecture", None)
    metadata: dict[str, Any] = dict(extra.pop("metadata", None) or {})
    for key in (*METADATA_FIELDS, *OUR_METADATA_FIELDS):
        value = getattr(cfg, key)
        if value is not None:
            metadata[key] = value
    architecture = saelens_architecture_name(cfg)
    if cfg.architecture in ("batchtopk", "matryoshka_batchtopk"):
        metadata["saescope_architecture"] = cfg.architecture
        metadata["saescope_k"] = cfg.k
        if cfg.matryoshka_widths:
            metadata["saescope_matryoshka_widths"] = list(cfg.matryoshka_widths)
    metadata.setdefault("sae_lens_version", "6.0.0")  # SAELens reads pre-6 configs differently
    metadata.setdefault("sae_lens_training_version", metadata["sae_lens_version"])
    out: dict[str, Any] = {
        "d_in": cfg.d_in,
        "d_sae": cfg.d_sae,
        "dtype": cfg.dtype,
        "device": "cpu",
        "apply_b_dec_to_input": cfg.apply_b_dec_to_input,
        "normalize_activations": cfg.normalize_activations,
        "reshape_activations": extra.pop("reshape_activations", "none"),
        "metadata": metadata,
        "architecture": architecture,
    }
    if architecture.startswith("topk"):
        out["k"] = cfg.k
        out["rescale_acts_by_decoder_norm"] = cfg.rescale_acts_by_decoder_norm
    if "transcoder" in architecture:
        out["d_out"] = cfg.d_out
    for key, value in extra.items():
        out.setdefault(key, value)
    return out


def tensors_to_saelens(sae: SAE) -> dict[str, torch.Tensor]:
    """Our tensors under SAELens's names ([d_sae] thresholds for BatchTopK, as SAELens saves it)."""
    tensors = {
        name: t.detach().cpu().contiguous()
        for name, t in sae.state_dict().items()
        if name != "input_scale"
    }
    if sae.cfg.architecture in ("batchtopk", "matryoshka_batchtopk"):
        tensors["threshold"] = tensors["threshold"].expand(sae.d_sae).contiguous()
    return tensors


def save(sae: SAE, path: str | Path, log_feature_sparsity: torch.Tensor | None = None) -> Path:
    """Write sae in SAELens's layout to folder `path`; returns the folder.

    A constant input scale is folded into the weights first (SAELens applies none at
    inference), so the saved SAE gives the same outputs without it. Each file is written to
    a temporary name and renamed, so an interrupted save never leaves a half-written file.
    """
    folder = Path(path)
    if (
        sae.cfg.normalize_activations in ("expected_average_only_in", "constant_scale")
        and float(sae.input_scale) != 1.0
    ):
        sae = copy_sae(sae)
        sae.fold_input_scale()
    if (
        sae.cfg.is_transcoder
        and sae.cfg.denormalize_outputs
        and sae.cfg.normalize_activations in ("layer_norm", "constant_norm_rescale")
    ):
        raise SaescopeError(
            "SAELens transcoders do not undo input normalisation in decode; this transcoder does, "
            "so it has no SAELens equivalent"
        )
    folder.mkdir(parents=True, exist_ok=True)
    save_tensors(folder / WEIGHTS_FILENAME, tensors_to_saelens(sae))
    sparsity = (
        log_feature_sparsity if log_feature_sparsity is not None else sae.log_feature_sparsity
    )
    if sparsity is not None:
        save_tensors(
            folder / SPARSITY_FILENAME, {"sparsity": sparsity.detach().cpu().float().contiguous()}
        )
    # the config last: a folder with a cfg.json is a complete SAE
    write_json(folder / CFG_FILENAME, config_to_saelens(sae.cfg))
    return folder


def copy_sae(sae: SAE) -> SAE:
    from saescope.sae.registry import build_sae

    clone = build_sae(sae.cfg.replace())
    clone.load_state_dict(sae.state_dict())
    clone.log_feature_sparsity = sae.log_feature_sparsity
    return clone
