"""Tests of the readers of other tools' SAE formats."""
