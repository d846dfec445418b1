"""Architecture name -> class (from the architecture registry), and building an SAE from a config
plus a file's tensors (checked)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import torch

from saescope.errors import SaescopeError
from saescope.sae.architectures import architecture_names, get_architecture
from saescope.sae.base import SAE, torch_dtype
from saescope.sae.config import SAEConfig


class ArchitectureClasses(Mapping[str, type[SAE]]):
    """Architecture name -> inference class, read from the architecture registry."""

    def __getitem__(self, name: str) -> type[SAE]:
        if name not in architecture_names():
            raise KeyError(name)
        return get_architecture(name).sae_class

    def __iter__(self) -> Iterator[str]:
        return iter(architecture_names())

    def __len__(self) -> int:
        return len(architecture_names())


ARCHITECTURE_CLASSES = ArchitectureClasses()


def build_sae(cfg: SAEConfig) -> SAE:
    """An SAE of cfg.architecture with zero weights."""
    return get_architecture(cfg.architecture).sae_class(cfg)


def expected_shapes(cfg: SAEConfig, file: str | Path) -> dict[str, tuple[int, ...]]:
    """The tensor shapes cfg describes, worked out on the meta device: a config that claims a
    huge SAE is checked against the file's tensors before anything is allocated."""
    try:
        with torch.device("meta"):
            return build_sae(cfg).expected_shapes()
    except (RuntimeError, TypeError, ValueError, OverflowError) as err:
        raise SaescopeError(
            f"{file}: the config describes no SAE that can be built (d_in={cfg.d_in!r}, "
            f"d_sae={cfg.d_sae!r}, architecture={cfg.architecture!r}): "
            f"{str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}"
        ) from None


def sae_from_tensors(cfg: SAEConfig, tensors: dict[str, torch.Tensor], file: str | Path) -> SAE:
    """Build the SAE cfg describes and load `tensors` into it, checking them against cfg.

    tensors must use our names (W_enc [d_in, d_sae], ...); `file` is named in every error.
    Optional tensors: input_scale (constant-scale normalisation); b_enc of a gated SAE.
    """
    expected = expected_shapes(cfg, file)
    missing = [name for name in expected if name not in tensors]
    if missing:
        raise SaescopeError(
            f"{file}: missing tensor(s) {', '.join(missing)} for a {cfg.architecture} SAE "
            f"(found: {', '.join(sorted(tensors)) or 'none'})"
        )
    for name, shape in expected.items():
        got = tuple(tensors[name].shape)
        if got != shape:
            raise SaescopeError(
                f"{file}: tensor {name} has shape {list(got)} but the config says {list(shape)} "
                f"(d_in={cfg.d_in}, d_sae={cfg.d_sae}, d_out={cfg.d_out}); the config contradicts "
                "the weights"
            )
    check_finite(tensors, file)
    sae = build_sae(cfg)  # allocates only what the file's own tensors already hold
    dtype = torch_dtype(cfg.dtype)
    with torch.no_grad():
        state = sae.state_dict()
        for name in expected:
            state[name] = tensors[name].to(dtype)
        if "input_scale" in tensors:
            state["input_scale"] = tensors["input_scale"].to(dtype).reshape(())
        sae.load_state_dict(state)
    return sae


def check_finite(tensors: dict[str, torch.Tensor], file: str | Path) -> None:
    """Raise naming the file and tensor if any floating tensor holds NaN or inf."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            n_nan = int(torch.isnan(tensor).sum())
            n_inf = int(torch.isinf(tensor).sum())
            raise SaescopeError(
                f"{file}: tensor {name} holds {n_nan} NaN and {n_inf} inf value(s); the weights "
                "are corrupt"
            )
