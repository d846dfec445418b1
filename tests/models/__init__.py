"""Tests of loading causal LMs and their hook points."""
