"""Tests of auto-interpretability: backends, prompts, parsers, scorers, the runner."""
