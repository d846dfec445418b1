"""Tests of the feature analysis pass."""
