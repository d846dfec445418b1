"""Tests of SAE training."""
