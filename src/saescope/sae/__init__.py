"""Sparse autoencoders: the architectures, the native format (SAELens's layout) and readers for
foreign formats."""

from saescope.sae.architectures import (
    BatchTopKSAE,
    GatedSAE,
    JumpReLUSAE,
    MatryoshkaBatchTopKSAE,
    StandardSAE,
    TopKSAE,
)
from saescope.sae.base import SAE, InputStats
from saescope.sae.config import ARCHITECTURES, NORMALIZE_MODES, SAEConfig
from saescope.sae.loading import load_sae
from saescope.sae.native import load_native, save_sae
from saescope.sae.registry import ARCHITECTURE_CLASSES, build_sae, sae_from_tensors

__all__ = [
    "ARCHITECTURES",
    "ARCHITECTURE_CLASSES",
    "NORMALIZE_MODES",
    "SAE",
    "BatchTopKSAE",
    "GatedSAE",
    "InputStats",
    "JumpReLUSAE",
    "MatryoshkaBatchTopKSAE",
    "SAEConfig",
    "StandardSAE",
    "TopKSAE",
    "build_sae",
    "load_native",
    "load_sae",
    "save_sae",
    "sae_from_tensors",
]
