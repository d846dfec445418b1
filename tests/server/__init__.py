"""Tests of the web viewer: its JSON API, live inference and pages in a real browser."""
