"""Feature analysis: one streaming pass computes every feature's statistics and examples."""

from saescope.analysis.accumulators import FeatureAccumulators
from saescope.analysis.config import AnalysisConfig
from saescope.analysis.io import load_analysis, save_analysis
from saescope.analysis.results import Example, ExampleStream, FeatureTables, SAEAnalysis
from saescope.analysis.run import analyze, finish_analysis, stream_pass

__all__ = [
    "AnalysisConfig",
    "Example",
    "ExampleStream",
    "FeatureAccumulators",
    "FeatureTables",
    "SAEAnalysis",
    "analyze",
    "finish_analysis",
    "load_analysis",
    "save_analysis",
    "stream_pass",
]
