"""Convert between the analysis contract (`SAEAnalysis`) and the store's rows, both ways.

Writing checks the analysis first (shapes, finite statistics) and each example as it is read
(kind, feature id, window lengths), so a bad one is refused with a message naming the field,
and nothing of it is kept. An example key that appears twice is refused by the examples
table's primary key.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from saescope.analysis.results import EXAMPLE_KINDS, Example, FeatureTables, SAEAnalysis
from saescope.errors import SaescopeError
from saescope.store.arrays import pack_arrays, unpack_arrays

# FeatureTables arrays stored per feature in feature_arrays.data (rows of [d_sae, ...] arrays).
FEATURE_ARRAYS = (
    "act_hist_counts",
    "quantile_values",
    "logit_top_ids",
    "logit_top_values",
    "logit_bottom_ids",
    "logit_bottom_values",
    "logit_hist_counts",
    "logit_hist_range",
    "neighbour_ids",
    "neighbour_cos",
    "cofiring_ids",
    "cofiring_corr",
    "neuron_ids",
    "neuron_weights",
)
SORT_COLUMNS = ("density", "max_act", "mean_act")
# Example arrays: activations are float32 (the precision the model computes in), ids int32.
EXAMPLE_FLOAT_ARRAYS = ("acts", "loss_effects", "top_boosted_values", "top_suppressed_values")
EXAMPLE_ID_ARRAYS = ("token_ids", "top_boosted", "top_suppressed")
# Each example array with the dtype it is stored as, in the order packed.
EXAMPLE_ARRAY_DTYPES = tuple(
    [(name, np.dtype(np.int32)) for name in EXAMPLE_ID_ARRAYS]
    + [(name, np.dtype(np.float32)) for name in EXAMPLE_FLOAT_ARRAYS]
)


def check_analysis(analysis: SAEAnalysis) -> None:
    """Refuse an analysis the store cannot hold faithfully, naming the field."""
    if not isinstance(analysis.sae_id, str) or not analysis.sae_id.strip():
        raise SaescopeError(
            f"SAEAnalysis.sae_id: got {analysis.sae_id!r}; expected a non-empty name."
        )
    tables = analysis.features
    d_sae = len(tables.density)
    declared = analysis.sae_info.get("d_sae")
    if declared is not None and int(declared) != d_sae:
        raise SaescopeError(
            f"SAEAnalysis {analysis.sae_id!r}: sae_info says d_sae={declared} but "
            f"the feature tables have {d_sae} rows."
        )
    for name in (*SORT_COLUMNS, *FEATURE_ARRAYS):
        array = getattr(tables, name)
        if array is not None and len(array) != d_sae:
            raise SaescopeError(
                f"FeatureTables.{name} of {analysis.sae_id!r}: {len(array)} rows; "
                f"expected d_sae={d_sae} like density."
            )
    for name in SORT_COLUMNS:
        bad = np.flatnonzero(~np.isfinite(np.asarray(getattr(tables, name), dtype=np.float64)))
        if len(bad):
            raise SaescopeError(
                f"FeatureTables.{name} of {analysis.sae_id!r} is not finite for "
                f"feature {int(bad[0])} (and {len(bad) - 1} more); expected numbers."
            )
    for name, values in tables.scores.items():
        if name in (*SORT_COLUMNS, "feature") or not name:
            raise SaescopeError(f"FeatureTables.scores: a score may not be named {name!r}.")
        if len(values) != d_sae:
            raise SaescopeError(
                f"FeatureTables.scores[{name!r}]: {len(values)} values; expected d_sae={d_sae}."
            )


def check_example(sae_id: str, ex: Example, d_sae: int) -> None:
    if ex.kind not in EXAMPLE_KINDS:
        raise SaescopeError(
            f"{_where(sae_id, ex)}: kind {ex.kind!r}; expected one of {', '.join(EXAMPLE_KINDS)}."
        )
    if not 0 <= ex.feature < d_sae:
        raise SaescopeError(f"{_where(sae_id, ex)}: feature id outside 0..{d_sae - 1}.")
    if len(ex.acts) != len(ex.token_ids):
        raise SaescopeError(
            f"{_where(sae_id, ex)}: {len(ex.acts)} acts for {len(ex.token_ids)} tokens."
        )


def _where(sae_id: str, ex: Example) -> str:
    """An example named in a message (made only for a message: every example is checked)."""
    return f"example (feature {ex.feature}, {ex.kind!r}, interval {ex.interval}, rank {ex.rank}) of {sae_id!r}"


def vocab_hash(vocab: list[str]) -> str:
    return hashlib.sha256(json.dumps(vocab).encode()).hexdigest()


def sae_row(analysis: SAEAnalysis) -> dict[str, Any]:
    info = analysis.sae_info
    return {
        "sae_id": analysis.sae_id,
        "d_sae": len(analysis.features.density),
        "d_in": int(info["d_in"]) if info.get("d_in") is not None else None,
        "n_tokens": int(analysis.n_tokens),
        "info": _json(info),
        "corpus": _json(analysis.corpus),
        "evals": _json(analysis.evals),
        "quantile_levels": _json(np.asarray(analysis.features.quantile_levels).tolist()),
        "score_names": _json(sorted(analysis.features.scores)),
        "vocab_hash": vocab_hash(analysis.vocab) if analysis.vocab is not None else None,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def feature_rows(
    analysis: SAEAnalysis, explanations: dict[int, str], labels: dict[int, str] | None = None
) -> Iterator[dict[str, Any]]:
    labels = labels or {}
    columns = {
        name: np.asarray(getattr(analysis.features, name), dtype=np.float64)
        for name in SORT_COLUMNS
    }
    for f in range(len(analysis.features.density)):
        yield {
            "sae_id": analysis.sae_id,
            "feature": f,
            **{name: float(column[f]) for name, column in columns.items()},
            "explanation": explanations.get(f),
            "label": labels.get(f),
        }


def feature_array_rows(analysis: SAEAnalysis) -> Iterator[dict[str, Any]]:
    tables = analysis.features
    arrays = {
        name: getattr(tables, name) for name in FEATURE_ARRAYS if getattr(tables, name) is not None
    }
    for f in range(len(tables.density)):
        yield {
            "sae_id": analysis.sae_id,
            "feature": f,
            "data": pack_arrays({name: np.asarray(array[f]) for name, array in arrays.items()}),
        }


def score_rows(analysis: SAEAnalysis) -> Iterator[dict[str, Any]]:
    for name, values in analysis.features.scores.items():
        for f, value in enumerate(np.asarray(values, dtype=np.float64).tolist()):
            if not math.isnan(value):  # a missing score is an absent row, not a NaN to sort
                yield {"sae_id": analysis.sae_id, "feature": f, "name": name, "value": value}


def example_arrays(ex: Example) -> dict[str, np.ndarray]:
    """An example's arrays in their stored dtypes (a fresh analysis's already are: kept as they are)."""
    arrays = {}
    for name, dtype in EXAMPLE_ARRAY_DTYPES:
        value = getattr(ex, name)
        if value is not None:
            arrays[name] = (
                value
                if type(value) is np.ndarray and value.dtype == dtype
                else np.asarray(value, dtype)
            )
    return arrays


def example_row(
    sae_id: str, ex: Example, arrays: dict[str, np.ndarray] | None = None
) -> dict[str, Any]:
    """The examples row of `ex`; `arrays`: its example_arrays, where the caller has them already."""
    if arrays is None:
        arrays = example_arrays(ex)
    return {
        "sae_id": sae_id,
        "feature": ex.feature,
        "kind": ex.kind,
        "rank": ex.rank,
        "interval": ex.interval,
        "center": ex.center,
        "max_act": float(ex.max_act),
        "context_index": ex.context_index,
        "position": ex.position,
        "data": pack_arrays(arrays),
    }


def example_from_row(row: Any) -> Example:
    arrays = unpack_arrays(row.data)
    optional = {name: arrays[name].tolist() for name in arrays if name not in ("token_ids", "acts")}
    return Example(
        feature=row.feature,
        kind=row.kind,
        rank=row.rank,
        interval=row.interval,
        token_ids=arrays["token_ids"].tolist(),
        acts=arrays["acts"].tolist(),
        center=row.center,
        max_act=row.max_act,
        context_index=row.context_index,
        position=row.position,
        **optional,
    )


def tables_from_rows(
    rows: Sequence[Any], quantile_levels: list[float], scores: dict[str, np.ndarray]
) -> FeatureTables:
    """Rebuild FeatureTables from all of an SAE's feature rows, in feature order."""
    per_feature = [unpack_arrays(row.data) for row in rows]
    stacked = {
        name: np.stack([arrays[name] for arrays in per_feature])
        for name in FEATURE_ARRAYS
        if per_feature and name in per_feature[0]
    }
    return FeatureTables(
        **{name: np.array([getattr(row, name) for row in rows]) for name in SORT_COLUMNS},
        quantile_levels=np.asarray(quantile_levels),
        scores=scores,
        **stacked,
    )


# --- search text -----------------------------------------------------------------------


def token_text(vocab: list[str] | None, token_id: int) -> str:
    if vocab is not None and 0 <= token_id < len(vocab):
        return vocab[token_id]
    return f"<{token_id}>"


class TokenTexts:
    """Token id -> text for whole arrays at once (a numpy lookup: a page has thousands)."""

    def __init__(self, vocab: list[str] | None) -> None:
        self.vocab = vocab
        self.table = np.array(vocab, dtype=object) if vocab is not None else None

    def __call__(self, ids: np.ndarray) -> list[Any]:
        """Texts of `ids`, keeping their shape ([window] or [window][n]) as nested lists."""
        ids = np.asarray(ids)
        if self.table is not None and (
            ids.size == 0 or (ids.min() >= 0 and ids.max() < len(self.table))
        ):
            return self.table[ids].tolist()
        return np.vectorize(lambda i: token_text(self.vocab, int(i)), otypes=[object])(ids).tolist()


def search_docs(
    sae_id: str,
    feature: int,
    top: list[tuple[np.ndarray, int]],
    explanation: str | None,
    texts: TokenTexts,
) -> list[dict[str, Any]]:
    """The searchable text of a feature: its explanation, the tokens its top examples are
    centred on (what it fires on most), and the text of those top contexts. top: (token ids,
    centre) of each top example, best first."""
    docs = []
    if explanation:
        docs.append(("explanation", explanation))
    if top:
        # one lookup for all the windows: tens of thousands of features have ~20 each
        lengths = [len(ids) for ids, _ in top]
        flat = texts(np.concatenate([ids for ids, _ in top]))
        windows = [
            flat[end - n : end]
            for end, n in zip(itertools.accumulate(lengths), lengths, strict=True)
        ]
        centres = dict.fromkeys(
            window[center]
            for window, (_, center) in zip(windows, top, strict=True)
            if 0 <= center < len(window)
        )
        docs.append(("top_tokens", "\n".join(centres)))
        docs.append(
            ("context", "\n".join("".join(window).replace("\n", " ") for window in windows))
        )
    return [
        {"sae_id": sae_id, "feature": feature, "field": field, "text": text} for field, text in docs
    ]


def _json(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, sort_keys=True)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)
