"""Any .gguf path: dequantised once into a cache keyed by file name, size and mtime (slow: ~30 s)."""

from __future__ import annotations

import os

import pytest
import torch

from saescope.models import load_model
from saescope.models.loading import gguf_cache_dir, smollm2_gguf


@pytest.mark.slow
def test_gguf_path_is_cached_and_matches_the_bundled_model(tmp_path, monkeypatch, smollm2):
    monkeypatch.setenv("SAESCOPE_CACHE", str(tmp_path))
    gguf = tmp_path / "copy" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(smollm2_gguf().read_bytes())
    stale = gguf_cache_dir(gguf).parent / f".{gguf_cache_dir(gguf).name}.tmp-killed"
    stale.mkdir(parents=True)  # what a killed earlier run leaves behind: ignored
    model = load_model(str(gguf))
    cached = gguf_cache_dir(gguf)
    assert cached.parent == tmp_path / "models" / "gguf" and cached.name.startswith(
        "SmolLM2-135M-Instruct.Q4_1-"
    )
    assert (cached / "model.safetensors").is_file() and (cached / "tokenizer.json").is_file()
    tokens = model.to_tokens("The capital of France is")
    torch.testing.assert_close(model.forward(tokens), smollm2.forward(tokens))
    # a changed file (new mtime) gets its own cache entry
    mtime = gguf.stat().st_mtime_ns
    os.utime(gguf, ns=(mtime + 10**9, mtime + 10**9))
    assert gguf_cache_dir(gguf) != cached
