"""A crafted or damaged activation-cache manifest is refused with one clear error: its shard
paths cannot point outside the cache, and missing fields are named, never a KeyError."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saescope.activations import HarvestConfig, harvest, load_cache
from saescope.activations.cache import read_manifest
from saescope.corpus import CorpusConfig
from saescope.errors import SaescopeError


@pytest.fixture(scope="module")
def cache_dir(smollm2, tmp_path_factory):
    out = tmp_path_factory.mktemp("cache") / "c"
    cfg = HarvestConfig(
        out=str(out),
        hooks=["blocks.2.hook_resid_post"],
        corpus=CorpusConfig(context_length=32),
        n_tokens=32 * 8,
        batch_size=4,
    )
    harvest(cfg, model=smollm2, progress=False)
    return out


def rewrite_manifest(cache_dir, tmp_path, change) -> str:
    copy = tmp_path / "copy"
    copy.mkdir()
    for file in cache_dir.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    manifest = json.loads((copy / "manifest.json").read_text())
    change(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return str(copy)


@pytest.mark.parametrize(
    "shard_file", ["../secret.safetensors", "/etc/passwd", "a/../../b", "", 7, None]
)
def test_shard_paths_outside_the_cache_are_refused(cache_dir, tmp_path, shard_file):
    (tmp_path / "secret.safetensors").write_bytes(b"not yours")

    def point_away(manifest):
        manifest["shards"][0]["file"] = shard_file

    directory = rewrite_manifest(cache_dir, tmp_path, point_away)
    with pytest.raises(SaescopeError, match="shard file"):
        next(iter(load_cache(directory)))


def test_a_symlinked_shard_leading_outside_is_refused(cache_dir, tmp_path):
    (tmp_path / "outside.safetensors").write_bytes(b"x")

    def to_link(manifest):
        manifest["shards"][0]["file"] = "link.safetensors"

    directory = rewrite_manifest(cache_dir, tmp_path, to_link)
    (tmp_path / "copy" / "link.safetensors").symlink_to(tmp_path / "outside.safetensors")
    with pytest.raises(SaescopeError, match="leads outside"):
        next(iter(load_cache(directory)))


@pytest.mark.parametrize("missing", ["model", "hooks", "norms", "shards", "target_contexts"])
def test_a_manifest_missing_a_field_is_named(cache_dir, tmp_path, missing):
    directory = rewrite_manifest(cache_dir, tmp_path, lambda m: m.pop(missing))
    with pytest.raises(SaescopeError, match=f"damaged activation cache manifest.*{missing}"):
        next(iter(load_cache(directory)))


def test_the_untouched_cache_still_reads(cache_dir):
    tokens, acts = next(iter(load_cache(cache_dir)))
    assert tokens.shape[1] == 32 and acts["blocks.2.hook_resid_post"].shape[-1] == 576


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(key=st.text(min_size=1, max_size=20), value=JSON_VALUES, nested=st.booleans())
def test_hostile_manifest_values_are_one_clear_error(cache_dir, key, value, nested):
    manifest = json.loads((cache_dir / "manifest.json").read_text())
    keys = sorted(manifest)
    target = manifest["shards"][0] if nested else manifest
    name = keys[len(key) % len(keys)] if not nested else ["file", "contexts"][len(key) % 2]
    target[name] = value
    with tempfile.TemporaryDirectory() as copy:
        (Path(copy) / "manifest.json").write_text(json.dumps(manifest))
        with contextlib.suppress(SaescopeError):
            read_manifest(copy)
