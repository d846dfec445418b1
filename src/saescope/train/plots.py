"""The training-curves PNG at the end of training; drawn by saescope.runs.metrics, which the
viewer uses too without importing the trainer."""

from saescope.runs.metrics import PANELS, plot_training_curves, read_metrics

__all__ = ["PANELS", "plot_training_curves", "read_metrics"]
