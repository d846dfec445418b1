"""Auto-interpretability: explain SAE features with an LLM and score the explanations.

Backends (OpenAI-compatible servers, an in-process HF chat model) sit behind one interface;
every request goes through an on-disk cache with a budget guard; explainers (delphi's format,
OpenAI/Neuronpedia token-activation pairs, short labels) and scorers (detection, fuzzing,
simulation) return plain dataclasses that hold everything a store will keep.
"""

import importlib
from typing import TYPE_CHECKING, Any

from saescope.autointerp.backend import BackendError, ChatRequest, Completion, LLMBackend, Message
from saescope.autointerp.cache import BudgetExceeded, LLMClient, RequestCache, Usage
from saescope.autointerp.examples import ExampleSets, select_examples
from saescope.autointerp.prompts import EXPLAIN_FORMATS, PROMPT_VERSIONS
from saescope.autointerp.results import (
    Explainer,
    Explanation,
    FeatureResult,
    Prediction,
    Score,
    recompute,
)
from saescope.autointerp.runner import AutoInterpConfig, explain_features, explain_features_async
from saescope.autointerp.scorers import SCORERS
from saescope.autointerp.store_write import stored_score, write_results

if TYPE_CHECKING:
    from saescope.autointerp.openai_backend import OpenAIBackend
    from saescope.autointerp.transformers_backend import TransformersBackend

# The backends import openai (most of a second): they load on first use, so that a command that
# only reads the config (every saescope command registers `explain`) does not pay for them.
_BACKEND_MODULES = {
    "OpenAIBackend": "saescope.autointerp.openai_backend",
    "TransformersBackend": "saescope.autointerp.transformers_backend",
}


def __getattr__(name: str) -> Any:
    if name in _BACKEND_MODULES:
        return getattr(importlib.import_module(_BACKEND_MODULES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EXPLAIN_FORMATS",
    "PROMPT_VERSIONS",
    "SCORERS",
    "AutoInterpConfig",
    "BackendError",
    "BudgetExceeded",
    "ChatRequest",
    "Completion",
    "ExampleSets",
    "Explainer",
    "Explanation",
    "FeatureResult",
    "LLMBackend",
    "LLMClient",
    "Message",
    "OpenAIBackend",
    "Prediction",
    "RequestCache",
    "Score",
    "TransformersBackend",
    "Usage",
    "explain_features",
    "explain_features_async",
    "recompute",
    "select_examples",
    "stored_score",
    "write_results",
]
