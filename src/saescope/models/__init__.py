"""Causal LMs with TransformerLens-style hook points: load, read
and replace activations, unembed."""

from saescope.models.hooked import HookedModel
from saescope.models.loading import load_model, load_tokenizer, wrap_hf_model

__all__ = ["HookedModel", "load_model", "load_tokenizer", "wrap_hf_model"]
