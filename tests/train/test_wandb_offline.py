"""Weights & Biases logging, offline: a run with wandb: true logs its metrics into run_dir/wandb."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest

from saescope.train import TrainConfig, train

wandb = pytest.importorskip("wandb", reason="wandb is in the dev extra")
from google.protobuf.message import DecodeError  # noqa: E402  (protobuf comes with wandb)

HOOK = "blocks.6.hook_resid_post"
BLOCK = 32 * 1024  # the .wandb file is a LevelDB-style log: 32 KiB blocks of framed records
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def wandb_records(path: Path) -> list:
    """The protobuf Records of an offline run's .wandb file (wandb 0.2x/0.3x has no public reader)."""
    from wandb.proto.wandb_internal_pb2 import Record

    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a wandb run log"
    records, pending, pos = [], b"", 7  # 7-byte file header: magic, 2-byte ident, version
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:  # zero padding at the end
            break
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def logged_history(records: list) -> list[dict]:
    """Each wandb.log call as {key: value}."""
    rows = []
    for record in records:
        if record.WhichOneof("record_type") == "history":
            rows.append(
                {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
            )
    return rows


def settled_history(
    log: Path, expected_rows: int, timeout_s: float = 120.0
) -> tuple[list, list[dict]]:
    """The records and history of log, once its history rows are all there: wandb's service
    process may still be writing the file for a moment after run.finish() returns (seen on a
    loaded machine), so wait for it, boundedly."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            records = wandb_records(log)
        except DecodeError:  # a record half written
            if time.monotonic() > deadline:
                raise
        else:
            history = logged_history(records)
            if len(history) >= expected_rows or time.monotonic() > deadline:
                return records, history
        time.sleep(0.5)


def test_training_metrics_reach_the_local_wandb_run(layer6_cache, tmp_path, monkeypatch):
    # offline: wandb writes the run under run_dir/wandb and never touches the network
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    cfg = TrainConfig(
        run_dir=str(tmp_path / "run"),
        activations={"cache": str(layer6_cache), "buffer_tokens": 8192},
        sae={"expansion_factor": 2, "b_dec_init_tokens": 1024},
        optim={"batch_size": 512, "training_tokens": 8 * 512},
        logging={
            "log_every_steps": 2,
            "progress": False,
            "wandb": True,
            "wandb_project": "saescope-test",
        },
    )
    run_dir = train(cfg)

    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, list((run_dir / "wandb").iterdir())
    (log,) = runs[0].glob("run-*.wandb")
    ours = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    records, history = settled_history(log, len(ours))
    # every metrics.jsonl line was logged, under the SAE's label, at its token count
    assert (
        [row["_step"] for row in history]
        == [row["tokens"] for row in ours]
        == [1024, 2048, 3072, 4096]
    )
    label = f"{HOOK}-x2-k32"
    for logged, row in zip(history, ours, strict=True):
        for name in ("fvu", "l0", "loss", "dead_fraction", "lr"):
            assert logged[f"{label}/{name}"] == pytest.approx(row[name]), name
    # the run's config went with it
    kinds = [r.WhichOneof("record_type") for r in records]
    configs = [r.run.config for r, kind in zip(records, kinds, strict=True) if kind == "run"]
    configs += [r.config for r, kind in zip(records, kinds, strict=True) if kind == "config"]
    keys = {item.key for c in configs for item in c.update}
    assert {"architecture.name", "sae.expansion_factor", "optim.lr"} <= keys
