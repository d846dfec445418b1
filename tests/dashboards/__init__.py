"""Tests of the static HTML dashboards, in a real browser."""
