"""Feature analysis: one streaming pass computes every feature's statistics and examples.

The modules: run (the whole job), streaming (the pass over the corpus), checkpoint (resuming it),
spool (activations kept for the example pass), finish (tables, logit tables, examples),
accumulators/sketch/tables (the statistics), examples/effects/directions (the examples and
their effects), results/io (the result and its .npz file).
"""

from saescope.analysis.accumulators import FeatureAccumulators
from saescope.analysis.checkpoint import (
    load_analysis_checkpoint,
    remove_analysis_checkpoint,
    save_analysis_checkpoint,
)
from saescope.analysis.config import AnalysisConfig
from saescope.analysis.finish import default_sae_id, finish_analysis
from saescope.analysis.io import load_analysis, save_analysis
from saescope.analysis.results import Example, ExampleStream, FeatureTables, SAEAnalysis
from saescope.analysis.run import analyze, prepare_analysis
from saescope.analysis.spool import open_spool
from saescope.analysis.streaming import stream_pass

__all__ = [
    "AnalysisConfig",
    "Example",
    "ExampleStream",
    "FeatureAccumulators",
    "FeatureTables",
    "SAEAnalysis",
    "analyze",
    "default_sae_id",
    "finish_analysis",
    "load_analysis",
    "load_analysis_checkpoint",
    "open_spool",
    "prepare_analysis",
    "remove_analysis_checkpoint",
    "save_analysis",
    "save_analysis_checkpoint",
    "stream_pass",
]
