"""Tests of the compiled kernels against plain torch."""
