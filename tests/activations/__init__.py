"""Tests of harvesting activations and the activation store."""
