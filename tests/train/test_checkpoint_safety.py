"""A training checkpoint is read with weights_only: a crafted file cannot run code on resume."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from saescope.errors import SaescopeError
from saescope.train.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint


class Touch:
    """Unpickling this calls Path.touch(marker): the code a hostile checkpoint would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_holding_objects_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "code-ran"
    path = checkpoint_path(tmp_path / "run")
    path.parent.mkdir(parents=True)
    torch.save({"step": 3, "payload": Touch(marker)}, path)
    with pytest.raises(SaescopeError, match="other than tensors and plain data.*delete"):
        load_checkpoint(tmp_path / "run")
    assert not marker.exists()


def test_tensors_and_plain_data_round_trip(tmp_path):
    state = {
        "config": {"k": 32, "hooks": ["blocks.6.hook_resid_post"], "aux_k": None},
        "step": 7,
        "generator": torch.Generator().get_state(),
        "saes": {"a": {"sae": {"W_enc": torch.randn(4, 8)}, "counted_tokens": 512}},
    }
    save_checkpoint(tmp_path, state)
    loaded = load_checkpoint(tmp_path)
    assert loaded is not None
    assert loaded["config"] == state["config"] and loaded["step"] == 7
    assert torch.equal(loaded["saes"]["a"]["sae"]["W_enc"], state["saes"]["a"]["sae"]["W_enc"])


CHECKPOINT_STATE = {
    "config": {"k": 32, "hooks": ["blocks.6.hook_resid_post"]},
    "step": 7,
    "saes": {"a": {"sae": {"W_enc": torch.arange(64.0).reshape(8, 8)}, "counted_tokens": 512}},
}


@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    fraction=st.one_of(st.none(), st.floats(0, 0.99)),
    flips=st.lists(st.tuples(st.floats(0, 0.999), st.integers(1, 255)), max_size=8),
)
def test_a_damaged_checkpoint_is_one_clear_error(fraction, flips):
    with tempfile.TemporaryDirectory() as run:
        save_checkpoint(run, CHECKPOINT_STATE)
        path = checkpoint_path(run)
        data = bytearray(path.read_bytes())
        if fraction is not None:
            data = data[: int(len(data) * fraction)]
        for where, mask in flips if data else []:
            data[int(where * len(data))] ^= mask
        path.write_bytes(bytes(data))
        try:
            load_checkpoint(run)
        except SaescopeError as err:
            assert str(err).startswith(str(path))
