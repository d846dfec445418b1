"""A damaged SQLite store (truncated, bit-flipped) opened and read as the viewer reads it: one
clear SaescopeError, never a raw database exception or a hang."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saescope.errors import SaescopeError
from saescope.store import open_store
from tests.store.store_data import make_analysis


@pytest.fixture(scope="module")
def store_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("store") / "features.db"
    with open_store(path) as store:
        store.write_analysis(make_analysis())
        store.set_explanation(make_analysis().sae_id, 3, "capital cities")
    return path.read_bytes()


def read_everything(path: Path) -> None:
    with open_store(path, create=False) as store:
        for sae in store.list_saes():
            sae_id = sae["sae_id"]
            store.sae_summary(sae_id)
            store.feature(sae_id, 3)
            store.features(sae_id, limit=10)
            store.search("capital")


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    fraction=st.one_of(st.none(), st.floats(0.05, 0.99)),
    flips=st.lists(st.tuples(st.floats(0, 0.999), st.integers(1, 255)), max_size=16),
)
def test_a_damaged_store_is_one_clear_error(store_bytes, fraction, flips):
    data = bytearray(
        store_bytes if fraction is None else store_bytes[: int(len(store_bytes) * fraction)]
    )
    for where, mask in flips:
        data[int(where * len(data))] ^= mask
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "features.db"
        path.write_bytes(bytes(data))
        with contextlib.suppress(SaescopeError):
            read_everything(path)
