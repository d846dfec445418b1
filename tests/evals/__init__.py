"""Tests of the SAE evaluations on the real model."""
