"""Live inference on a prompt: per-token feature activations and feature rankings at a token,
shared by the prompt-centric dashboards and the web viewer's live endpoints."""

from saescope.inference.prompt import (
    PromptRow,
    PromptRun,
    QuantileTable,
    TokenRanking,
    activation_quantiles,
    run_prompt,
)

__all__ = [
    "PromptRow",
    "PromptRun",
    "QuantileTable",
    "TokenRanking",
    "activation_quantiles",
    "run_prompt",
]
