"""Tests of the SAE architectures, the native format and the hub registry."""
