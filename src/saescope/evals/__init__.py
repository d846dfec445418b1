"""Evaluating SAEs on their model: reconstruction, downstream loss, KL, feature density."""

from saescope.evals.config import EvalConfig
from saescope.evals.evaluate import evaluate, evaluate_path, find_saes, format_table
from saescope.evals.metrics import EvalAccumulator

__all__ = [
    "EvalAccumulator",
    "EvalConfig",
    "evaluate",
    "evaluate_path",
    "find_saes",
    "format_table",
]
