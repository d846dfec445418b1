"""An SAEAnalysis as one file without a database: an .npz of the arrays plus a JSON document.

Written atomically. The feature store (saescope.store) is the main home of analyses; this
file form is for moving one analysis around and for tests.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from saescope.analysis.results import Example, FeatureTables, SAEAnalysis
from saescope.errors import SaescopeError
from saescope.fileio import atomic_write

TABLE_ARRAYS = [f.name for f in dataclasses.fields(FeatureTables) if f.name != "scores"]


def save_analysis(result: SAEAnalysis, path: str | Path) -> Path:
    """Write result to path (.npz: arrays + 'analysis.json' inside). The examples are written as
    they are read (a streamed analysis's example pass runs here), never all held at once."""
    arrays = {
        name: np.asarray(getattr(result.features, name))
        for name in TABLE_ARRAYS
        if getattr(result.features, name) is not None
    }
    arrays.update({f"score.{k}": np.asarray(v) for k, v in result.features.scores.items()})

    def write(tmp: Path) -> None:
        buffer = io.BytesIO()
        # numpy's stubs match **arrays against allow_pickle; no array has that name
        np.savez(buffer, **arrays)  # pyright: ignore[reportArgumentType]
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr("arrays.npz", buffer.getvalue())
            with zf.open("analysis.json", "w", force_zip64=True) as out:
                out.write(b'{"examples": [')
                for i, ex in enumerate(result.examples):
                    out.write(
                        (b", " if i else b"")
                        + json.dumps(dataclasses.asdict(ex), default=_json_default).encode()
                    )
                # the rest after the examples: sae_info holds the example pass's timing
                doc = {
                    "sae_id": result.sae_id,
                    "sae_info": result.sae_info,
                    "n_tokens": result.n_tokens,
                    "corpus": result.corpus,
                    "evals": result.evals,
                    "vocab": result.vocab,
                }
                # without its "{"
                out.write(b"], " + json.dumps(doc, default=_json_default).encode()[1:])

    atomic_write(path, write)
    return Path(path)


def load_analysis(path: str | Path) -> SAEAnalysis:
    try:
        with zipfile.ZipFile(path) as zf:
            doc = json.loads(zf.read("analysis.json"))
            arrays = dict(np.load(io.BytesIO(zf.read("arrays.npz"))))
    except (OSError, KeyError, zipfile.BadZipFile, ValueError) as err:
        raise SaescopeError(f"{path}: not a saescope analysis file ({err}).") from None
    scores = {k.removeprefix("score."): v for k, v in arrays.items() if k.startswith("score.")}
    tables = FeatureTables(
        **{k: v for k, v in arrays.items() if not k.startswith("score.")}, scores=scores
    )
    return SAEAnalysis(
        sae_id=doc["sae_id"],
        sae_info=doc["sae_info"],
        n_tokens=doc["n_tokens"],
        corpus=doc["corpus"],
        features=tables,
        examples=[Example(**ex) for ex in doc["examples"]],
        evals=doc["evals"],
        vocab=doc["vocab"],
    )


def _json_default(obj: object) -> object:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)
