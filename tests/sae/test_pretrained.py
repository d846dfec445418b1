"""Published SAEs by name: the registry against SAELens's own, and loading by name offline from a
hub cache this test builds (as test_hub does) with real files of four formats at the registry's paths."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import pytest
import torch
import yaml

from saescope.cli import main
from saescope.errors import SaescopeError
from saescope.sae import load_sae
from saescope.sae.pretrained import list_pretrained, registry, resolve_pretrained
from tests.sae.sae_testing import OUR_FIXTURES, SHARED_FIXTURES
from tests.sae.test_hub import build_hub_cache

SAELENS_YAML = OUR_FIXTURES / "saelens_registry" / "pretrained_saes.yaml.gz"
GENERATOR = OUR_FIXTURES.parents[1] / "scripts" / "make_pretrained_registry.py"
# SAELens's loader -> the saescope reader of those files (releases of other loaders say why not)
READABLE = {
    "sae_lens": "saelens",
    "gemma_2": "gemma_scope",
    "llama_scope": "lm_saes",
    "llama_scope_r1_distill": "lm_saes",
    "dictionary_learning_1": "dictionary_learning",
}

SAELENS_NAME = "gpt2-small-res-jb/blocks.8.hook_resid_pre"
SCALED_NAME = "gpt2-small-mlp-tm/blocks.0.hook_mlp_out"  # has a norm scaling factor
GEMMA_NAME = "gemma-scope-2b-pt-res-canonical/layer_12/width_16k/canonical"
GEMMA_NEURONPEDIA = "gemma-2-2b/12-gemmascope-res-16k"
LLAMA_NAME = "llama_scope_lxr_8x/l3r_8x"
DL_NAME = "sae_bench_gemma-2-2b_topk_width-2pow12_date-1109/blocks.12.hook_resid_post__trainer_0"
LOCAL = {
    SAELENS_NAME: SHARED_FIXTURES / "saelens" / "standard",
    SCALED_NAME: SHARED_FIXTURES / "saelens" / "topk",
    GEMMA_NAME: OUR_FIXTURES
    / "gemma_scope/jumprelu/gemma-scope-2b-pt-res/layer_5/width_128/average_l0_40",
    LLAMA_NAME: OUR_FIXTURES / "lm_saes" / "llama_scope_v1_res",
    DL_NAME: OUR_FIXTURES / "dictionary_learning" / "topk",
}


@pytest.fixture(scope="module")
def saelens_registry() -> dict:
    return yaml.safe_load(gzip.decompress(SAELENS_YAML.read_bytes()))


def local_files(folder: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(folder)): p
        for p in folder.rglob("*")
        if p.is_file() and p.name not in ("reference.safetensors", "SOURCE.txt")
    }


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    """A hub cache holding each SAE of LOCAL at its repository and path in the registry."""
    cache = tmp_path / "hub"
    by_repo: dict[str, dict[str, Path]] = {}
    for name, folder in LOCAL.items():
        entry = resolve_pretrained(name)
        files = by_repo.setdefault(entry.repo_id, {})
        files |= {f"{entry.path}/{rel}": p for rel, p in local_files(folder).items()}
    for repo_id, files in by_repo.items():
        build_hub_cache(cache, repo_id, files)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def inputs(d_in: int) -> torch.Tensor:
    return torch.randn(24, d_in, generator=torch.Generator().manual_seed(3)) * 3 + 0.5


# ---- the registry against SAELens's ------------------------------------------------------


def test_registry_covers_every_saelens_release(saelens_registry):
    ours = registry()
    assert set(ours) == set(saelens_registry)
    for name, theirs in saelens_registry.items():
        mine = ours[name]
        loader = theirs.get("conversion_func") or "sae_lens"
        assert mine["repo_id"] == theirs["repo_id"], name
        assert mine["loader"] == loader and mine["model_name"] == theirs["model"], name
        assert mine["format"] == READABLE.get(loader), name
        assert (mine["format"] is None) == bool(mine.get("unsupported")), name
        assert [s["id"] for s in mine["saes"]] == [str(s["id"]) for s in theirs["saes"]], name
        for sae, their_sae in zip(mine["saes"], theirs["saes"], strict=True):
            assert sae.get("path", sae["id"]) == str(their_sae["path"]), (name, sae["id"])
            assert sae.get("norm_scaling_factor") == their_sae.get("norm_scaling_factor")
            assert sae.get("neuronpedia") == their_sae.get("neuronpedia")
            assert sae.get("l0") == their_sae.get("l0")


def test_registry_is_what_the_script_makes_from_saelens_yaml():
    spec = importlib.util.spec_from_file_location("make_pretrained_registry", GENERATOR)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.build(SAELENS_YAML)["releases"] == registry()


def test_registry_has_the_formats_saescope_reads():
    formats = {entry["format"] for entry in registry().values()}
    assert {"saelens", "gemma_scope", "lm_saes", "dictionary_learning"} <= formats
    gemma = resolve_pretrained(GEMMA_NAME)
    assert (gemma.repo_id, gemma.path) == (
        "google/gemma-scope-2b-pt-res",
        "layer_12/width_16k/average_l0_82",
    )
    assert (gemma.model, gemma.hook, gemma.width) == (
        "google/gemma-2-2b",
        "blocks.12.hook_resid_post",
        16384,
    )
    assert resolve_pretrained(GEMMA_NEURONPEDIA) == gemma


# ---- loading by name, offline --------------------------------------------------------------


@pytest.mark.parametrize("name", [SAELENS_NAME, GEMMA_NAME, LLAMA_NAME, DL_NAME])
def test_load_by_name_matches_the_files(hub, name):
    entry = resolve_pretrained(name)
    sae = load_sae(name)
    local = load_sae(LOCAL[name])
    x = inputs(sae.d_in)
    assert sae.file_format == entry.format
    assert sae.cfg.model_name == entry.model  # the HF id, whatever the files call the model
    if local.cfg.hook_name is None:  # the files name no hook point: the registry's
        assert sae.cfg.hook_name == entry.hook
    assert sae.cfg.source_path == name
    assert sae.cfg.extra["pretrained"]["release"] == entry.release
    if entry.neuronpedia:
        assert sae.cfg.extra["metadata"]["neuronpedia_id"] == entry.neuronpedia
    # Llama Scope's files carry the scale the registry lists: it must not be applied twice
    assert sae.cfg.extra["pretrained"]["norm_scaling_factor_applied"] is None
    torch.testing.assert_close(sae(x), local(x))


def test_neuronpedia_id_loads_the_same_sae(hub):
    by_id = load_sae(GEMMA_NEURONPEDIA)
    x = inputs(by_id.d_in)
    assert by_id.cfg.source_path == GEMMA_NAME
    assert torch.equal(by_id(x), load_sae(GEMMA_NAME)(x))


def test_norm_scaling_factor_is_applied(hub):
    entry = resolve_pretrained(SCALED_NAME)
    s = entry.norm_scaling_factor
    assert s is not None and s != 1.0
    sae, local = load_sae(SCALED_NAME), load_sae(LOCAL[SCALED_NAME])
    x = inputs(sae.d_in)
    assert sae.cfg.extra["pretrained"]["norm_scaling_factor_applied"] == s
    # SAELens's from_pretrained: the SAE reads x * s and its output is scaled back
    torch.testing.assert_close(sae.encode(x), local.encode(x * s))
    torch.testing.assert_close(sae(x), local(x * s) / s)
    assert not torch.allclose(sae(x), local(x))


# ---- bad input -----------------------------------------------------------------------------


def test_unknown_release_or_id_names_the_closest(hub):
    with pytest.raises(SaescopeError, match="closest: gemma-scope-2b-pt-res-canonical"):
        load_sae("gemma-scope-2b-pt-res-canonicl/layer_12/width_16k/canonical")
    with pytest.raises(SaescopeError, match="has no SAE.*closest: layer_12/width_16k/canonical"):
        load_sae("gemma-scope-2b-pt-res-canonical/layer_12/width_16k/canonicl")


def test_unreadable_format_says_which_and_why(hub):
    with pytest.raises(SaescopeError, match="cannot read.*'gemma_3' loader.*Gemma Scope 2"):
        load_sae("gemma-scope-2-1b-pt-res/layer_7_width_16k_l0_small")


@pytest.mark.parametrize(
    "name",
    [
        "gpt2-small-res-jb/blocks.2.hook_resid_pre",  # the repository is cached, this SAE is not
        "pythia-70m-deduped-res-sm/blocks.3.hook_resid_post",  # nothing of it is cached
    ],
)
def test_offline_and_not_cached_is_one_line(hub, name):
    with pytest.raises(SaescopeError) as err:
        load_sae(name)
    message = str(err.value)
    assert message.startswith(name) and "\n" not in message
    assert "not in the local hub cache" in message and "HF_HUB_OFFLINE is set" in message


def test_the_registry_disagreeing_with_the_files_is_an_error(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    entry = resolve_pretrained(SAELENS_NAME)
    files = local_files(LOCAL[DL_NAME])  # dictionary_learning files where SAELens's should be
    build_hub_cache(cache, entry.repo_id, {f"{entry.path}/{k}": v for k, v in files.items()})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SaescopeError, match="registry says saelens.*holds dictionary_learning"):
        load_sae(SAELENS_NAME)


# ---- the CLI -------------------------------------------------------------------------------


def test_sae_list_filters_by_model_and_text(capsys):
    assert (
        main(["sae", "list", "--model", "gpt2-small", "--search", "blocks.8.hook_resid_pre"]) == 0
    )
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["release", "id", "model", "hook", "width", "L0"]
    assert any(line.startswith("gpt2-small-res-jb ") for line in lines)
    assert "gemma" not in out
    n = len(list_pretrained(model="openai-community/gpt2", search="blocks.8.hook_resid_pre"))
    assert lines[-1] == f"{n} SAE(s)" and n == len(lines) - 2 >= 3


def test_sae_pull_prints_where(hub, capsys):
    assert main(["sae", "pull", GEMMA_NEURONPEDIA]) == 0
    out = capsys.readouterr().out
    assert str(hub) in out and "layer_12/width_16k/average_l0_82" in out
    assert main(["sae", "info", GEMMA_NAME]) == 0
    assert "google/gemma-2-2b" in capsys.readouterr().out
