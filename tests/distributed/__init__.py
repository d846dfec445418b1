"""Tests of harvesting, training and analysis under torch.distributed (2 processes)."""
