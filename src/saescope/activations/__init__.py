"""Activations: harvest them from a model into an on-disk cache, read the
cache, stream training batches."""

from saescope.activations.cache import ActivationCache, load_cache
from saescope.activations.harvest import HarvestConfig, harvest
from saescope.activations.store import ActivationStore

__all__ = ["ActivationCache", "ActivationStore", "HarvestConfig", "harvest", "load_cache"]
