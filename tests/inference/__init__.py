"""Tests of running prompts through the model and an SAE."""
