"""SAE readers fed truncated, bit-flipped and hostile files: every load either succeeds or raises
one SaescopeError; never another exception, a hang, or a huge allocation from a config's claims.

Every fixture folder written by a peer library is mutated (a fixed, derandomised set of cases)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saescope.errors import SaescopeError
from saescope.sae import load_sae

TESTS = Path(__file__).resolve().parents[1]
FOLDERS = sorted(
    p.parent
    for root in (TESTS / "fixtures", TESTS.parent.parent / "shared" / "fixtures")
    for p in root.rglob("*")
    if p.name in ("cfg.json", "config.json", "ae.pt", "sae.safetensors", "params.npz")
    or p.suffix in (".pt", ".npz")
)
FOLDERS = sorted(set(FOLDERS))
FUZZ = settings(
    max_examples=12,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def copy_of(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "sae"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(folder, target)
    for reference in target.rglob("reference.safetensors"):
        reference.unlink()
    return target


def loads_or_refuses(path: Path) -> None:
    try:
        load_sae(path)
    except SaescopeError as err:
        assert "Traceback" not in str(err) and len(str(err)) < 2000
    # any other exception fails the test with its traceback


def files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "SOURCE.txt")


def test_there_are_fixtures():
    assert len(FOLDERS) >= 20, FOLDERS


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: f"{p.parent.name}/{p.name}")
@FUZZ
@given(which=st.integers(min_value=0), fraction=st.floats(min_value=0.0, max_value=0.99))
def test_truncated_files(folder, tmp_path, which, fraction):
    sae = copy_of(folder, tmp_path)
    victims = files_of(sae)
    victim = victims[which % len(victims)]
    data = victim.read_bytes()
    victim.write_bytes(data[: int(len(data) * fraction)])
    loads_or_refuses(sae)


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: f"{p.parent.name}/{p.name}")
@FUZZ
@given(
    which=st.integers(min_value=0),
    flips=st.lists(st.tuples(st.floats(0, 0.999), st.integers(1, 255)), min_size=1, max_size=8),
)
def test_bit_flipped_files(folder, tmp_path, which, flips):
    sae = copy_of(folder, tmp_path)
    victims = files_of(sae)
    victim = victims[which % len(victims)]
    data = bytearray(victim.read_bytes())
    for where, mask in flips:
        data[int(where * len(data))] ^= mask
    victim.write_bytes(bytes(data))
    loads_or_refuses(sae)


HOSTILE_VALUES = st.one_of(
    st.sampled_from([10**12, -1, 0, 2**63, 1e308, float("nan"), "16", None, [], {}, True]),
    st.text(max_size=20),
)


@pytest.mark.parametrize(
    "folder",
    [f for f in FOLDERS if (f / "cfg.json").exists()],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
@FUZZ
@given(key_index=st.integers(min_value=0), value=HOSTILE_VALUES)
def test_hostile_config_values(folder, tmp_path, key_index, value):
    sae = copy_of(folder, tmp_path)
    cfg = json.loads((sae / "cfg.json").read_text())
    keys = sorted(cfg)
    cfg[keys[key_index % len(keys)]] = value
    (sae / "cfg.json").write_text(json.dumps(cfg))
    loads_or_refuses(sae)
