"""Explanations, labels and their scores in the feature store, and the mirrors kept in step.

Every explanation of a feature is a row of `explanations` (auto-interp's or one set by hand,
backend "manual"); at most one per feature and kind ("explanation" or "label") is current.
Scores hang off an explanation in `explanation_scores`, each with the per-example predictions
it was computed from (zlib-compressed JSON), so it can be recomputed from the store.

The rest of the store reads the current ones through mirrors that `sync_features` rewrites in
the same transaction as the change: `features.explanation` and `features.label`, the
search_docs fields "explanation" and "label", and the current explanation's newest score of
each scorer as a `scores` row named after the scorer (listed in `saes.score_names`), which is
how the feature list sorts and filters by "detection" with no query code of its own.

These functions take an open connection inside the caller's write transaction; FeatureStore
wraps them (store.py).
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, delete, func, select, update

from saescope.errors import ConfigError, SaescopeError
from saescope.store.schema import (
    EXPLANATION_KINDS,
    explanation_scores,
    explanations,
    features,
    saes,
    scores,
    search_docs,
)

MANUAL_BACKEND = "manual"
HISTOGRAM_BINS = 20


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def iso_from_timestamp(timestamp: float | str | None) -> str:
    """A creation time as stored: ISO 8601 UTC (a POSIX timestamp, an ISO string, or now)."""
    if timestamp is None:
        return now_iso()
    if isinstance(timestamp, str):
        return timestamp
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="microseconds")


def bump_written_at(conn: Connection, sae_id: str) -> None:
    """A new version of the SAE: readers that cache its pages (the viewer) re-read them."""
    conn.execute(saes.update().where(saes.c.sae_id == sae_id).values(written_at=now_iso()))


def plain(obj: Any) -> Any:
    """JSON-able data: dataclasses as dicts, numpy as Python, non-finite floats as None
    (JSON has no NaN, and the viewer parses what the API sends with JSON.parse)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        obj = asdict(obj)
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if isinstance(obj, np.generic | np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def check_kind(kind: str) -> None:
    if kind not in EXPLANATION_KINDS:
        raise ConfigError("kind", kind, f"one of {', '.join(EXPLANATION_KINDS)}")


def check_feature(conn: Connection, sae_id: str, feature: int) -> None:
    """Refuse a feature the SAE does not have, naming its range."""
    found = conn.execute(
        select(features.c.feature).where(features.c.sae_id == sae_id, features.c.feature == feature)
    ).first()
    if found is None:
        d_sae = conn.execute(select(saes.c.d_sae).where(saes.c.sae_id == sae_id)).scalar_one()
        raise SaescopeError(
            f"feature: got {feature!r}; SAE {sae_id!r} has features 0..{d_sae - 1}."
        )


# --- writing -----------------------------------------------------------------------------


def insert_explanation(
    conn: Connection,
    sae_id: str,
    feature: int,
    text: str | None,
    *,
    kind: str,
    status: str,
    backend: str,
    model: str,
    prompt_format: str,
    prompt_version: int,
    created_at: str,
    prompt_tokens: int,
    completion_tokens: int,
    data: dict[str, Any] | None,
    current: bool,
) -> int:
    """A new explanation row (made current when asked and it has text); returns its id."""
    check_kind(kind)
    current = current and bool(text)
    if current:
        clear_current(conn, sae_id, feature, kind)
    result = conn.execute(
        explanations.insert().values(
            sae_id=sae_id,
            feature=feature,
            kind=kind,
            text=text,
            status=status,
            backend=backend,
            model=model,
            prompt_format=prompt_format,
            prompt_version=int(prompt_version),
            created_at=created_at,
            prompt_tokens=int(prompt_tokens),
            completion_tokens=int(completion_tokens),
            is_current=current,
            data=json.dumps(plain(data or {})),
        )
    )
    return int(result.inserted_primary_key[0])


def insert_score(
    conn: Connection,
    explanation_id: int,
    scorer: str,
    value: float | None,
    *,
    metrics: dict[str, Any],
    predictions: Sequence[Any],
    prompt_version: int,
    prompt_tokens: int,
    completion_tokens: int,
    data: dict[str, Any] | None,
) -> int:
    if not isinstance(scorer, str) or not scorer.strip():
        raise ConfigError("scorer", scorer, "a non-empty name such as detection")
    if value is not None:
        value = float(value)
        value = value if math.isfinite(value) else None
    packed = zlib.compress(json.dumps(plain(list(predictions))).encode())
    result = conn.execute(
        explanation_scores.insert().values(
            explanation_id=explanation_id,
            scorer=scorer,
            value=value,
            metrics=json.dumps(plain(metrics)),
            predictions=packed,
            prompt_version=int(prompt_version),
            prompt_tokens=int(prompt_tokens),
            completion_tokens=int(completion_tokens),
            created_at=now_iso(),
            data=json.dumps(plain(data or {})),
        )
    )
    return int(result.inserted_primary_key[0])


def explanation_row(conn: Connection, explanation_id: int) -> Any:
    row = conn.execute(select(explanations).where(explanations.c.id == explanation_id)).first()
    if row is None:
        raise SaescopeError(
            f"explanation_id: got {explanation_id!r}; the store has no such explanation."
        )
    return row


def clear_current(conn: Connection, sae_id: str, feature: int, kind: str) -> None:
    conn.execute(
        update(explanations)
        .where(
            explanations.c.sae_id == sae_id,
            explanations.c.feature == feature,
            explanations.c.kind == kind,
            explanations.c.is_current.is_(True),
        )
        .values(is_current=False)
    )


def make_current(conn: Connection, row: Any) -> None:
    """Make a stored explanation its feature's current one of its kind."""
    if not row.text:
        raise SaescopeError(
            f"explanation_id: {row.id} has no text (its explainer's answer was {row.status!r}); "
            "only an explanation with text can be current."
        )
    clear_current(conn, row.sae_id, row.feature, row.kind)
    conn.execute(update(explanations).where(explanations.c.id == row.id).values(is_current=True))


def current_explanation_id(conn: Connection, sae_id: str, feature: int, kind: str) -> int | None:
    return conn.execute(
        select(explanations.c.id).where(
            explanations.c.sae_id == sae_id,
            explanations.c.feature == feature,
            explanations.c.kind == kind,
            explanations.c.is_current.is_(True),
        )
    ).scalar()


def delete_explanations(conn: Connection, sae_id: str, from_feature: int = 0) -> None:
    """Every explanation (and score) of the SAE's features from `from_feature` on."""
    ids = select(explanations.c.id).where(
        explanations.c.sae_id == sae_id, explanations.c.feature >= from_feature
    )
    conn.execute(delete(explanation_scores).where(explanation_scores.c.explanation_id.in_(ids)))
    conn.execute(
        delete(explanations).where(
            explanations.c.sae_id == sae_id, explanations.c.feature >= from_feature
        )
    )


# --- mirrors -----------------------------------------------------------------------------


def current_texts(conn: Connection, sae_id: str, kind: str) -> dict[int, str]:
    """feature -> text of its current explanation of `kind`."""
    return dict(
        conn.execute(
            select(explanations.c.feature, explanations.c.text).where(
                explanations.c.sae_id == sae_id,
                explanations.c.kind == kind,
                explanations.c.is_current.is_(True),
            )
        ).all()
    )


def mirrored_scores(
    conn: Connection, sae_id: str, feature_ids: Iterable[int] | None = None
) -> dict[tuple[int, str], float | None]:
    """(feature, scorer) -> value of the newest score of that scorer of each feature's current
    explanation (None where it has no value: then there is no scores row)."""
    query = (
        select(
            explanations.c.feature,
            explanation_scores.c.scorer,
            explanation_scores.c.value,
        )
        .join(explanations, explanations.c.id == explanation_scores.c.explanation_id)
        .where(
            explanations.c.sae_id == sae_id,
            explanations.c.kind == "explanation",
            explanations.c.is_current.is_(True),
        )
        .order_by(explanation_scores.c.id)
    )
    if feature_ids is not None:
        query = query.where(explanations.c.feature.in_(list(feature_ids)))
    return {(row.feature, row.scorer): row.value for row in conn.execute(query)}


def scorer_names(
    conn: Connection, sae_id: str, feature_ids: Iterable[int] | None = None
) -> set[str]:
    """Every scorer that has scored any explanation of these features (default: all): the
    score names the mirror may have written for them."""
    query = (
        select(explanation_scores.c.scorer)
        .distinct()
        .join(explanations, explanations.c.id == explanation_scores.c.explanation_id)
        .where(explanations.c.sae_id == sae_id)
    )
    if feature_ids is not None:
        query = query.where(explanations.c.feature.in_(list(feature_ids)))
    return set(conn.execute(query).scalars())


def add_score_names(conn: Connection, sae_id: str, names: Iterable[str]) -> None:
    current = json.loads(
        conn.execute(select(saes.c.score_names).where(saes.c.sae_id == sae_id)).scalar_one()
    )
    merged = sorted(set(current) | set(names))
    if merged != current:
        conn.execute(
            saes.update().where(saes.c.sae_id == sae_id).values(score_names=json.dumps(merged))
        )


def sync_features(conn: Connection, sae_id: str, feature_ids: Iterable[int]) -> None:
    """Rewrite the mirrors of these features from their current explanations, and bump the
    SAE's written_at."""
    ids = sorted(set(feature_ids))
    if not ids:
        return
    texts = {kind: _current_of(conn, sae_id, ids, kind) for kind in EXPLANATION_KINDS}
    for f in ids:
        conn.execute(
            features.update()
            .where(features.c.sae_id == sae_id, features.c.feature == f)
            .values(explanation=texts["explanation"].get(f), label=texts["label"].get(f))
        )
    conn.execute(
        search_docs.delete().where(
            search_docs.c.sae_id == sae_id,
            search_docs.c.feature.in_(ids),
            search_docs.c.field.in_(EXPLANATION_KINDS),
        )
    )
    docs = [
        {"sae_id": sae_id, "feature": f, "field": kind, "text": text}
        for f in ids
        for kind in EXPLANATION_KINDS
        if (text := texts[kind].get(f))
    ]
    if docs:
        conn.execute(search_docs.insert(), docs)
    names = scorer_names(conn, sae_id, ids)
    if names:
        # a scorer's name shadows an analysis score of the same name for these features
        conn.execute(
            scores.delete().where(
                scores.c.sae_id == sae_id, scores.c.feature.in_(ids), scores.c.name.in_(names)
            )
        )
        values = mirrored_scores(conn, sae_id, ids)
        score_rows = [
            {"sae_id": sae_id, "feature": f, "name": name, "value": value}
            for (f, name), value in values.items()
            if value is not None
        ]
        if score_rows:
            conn.execute(scores.insert(), score_rows)
        add_score_names(conn, sae_id, {name for _, name in values})
    bump_written_at(conn, sae_id)


def _current_of(conn: Connection, sae_id: str, ids: list[int], kind: str) -> dict[int, str]:
    return dict(
        conn.execute(
            select(explanations.c.feature, explanations.c.text).where(
                explanations.c.sae_id == sae_id,
                explanations.c.feature.in_(ids),
                explanations.c.kind == kind,
                explanations.c.is_current.is_(True),
            )
        ).all()
    )


# --- reading -----------------------------------------------------------------------------


def explanation_lists(
    conn: Connection, sae_id: str, feature_ids: Sequence[int]
) -> dict[int, list[dict[str, Any]]]:
    """feature -> its explanations, current first, then newest first, each with its scores
    (without their predictions)."""
    rows = conn.execute(
        select(explanations)
        .where(explanations.c.sae_id == sae_id, explanations.c.feature.in_(list(feature_ids)))
        .order_by(
            explanations.c.feature,
            explanations.c.is_current.desc(),
            explanations.c.created_at.desc(),
            explanations.c.id.desc(),
        )
    ).all()
    if not rows:
        return {}
    by_explanation: dict[int, list[dict[str, Any]]] = {}
    for score in conn.execute(
        select(
            explanation_scores.c.id,
            explanation_scores.c.explanation_id,
            explanation_scores.c.scorer,
            explanation_scores.c.value,
            explanation_scores.c.metrics,
            explanation_scores.c.predictions,
            explanation_scores.c.created_at,
        )
        .where(explanation_scores.c.explanation_id.in_([r.id for r in rows]))
        .order_by(explanation_scores.c.id)
    ):
        by_explanation.setdefault(score.explanation_id, []).append(
            {
                "id": score.id,
                "scorer": score.scorer,
                "value": score.value,
                "metrics": json.loads(score.metrics),
                "n_predictions": len(unpack_predictions(score.predictions)),
                "created_at": score.created_at,
            }
        )
    out: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row.feature, []).append(
            explanation_dict(row, by_explanation.get(row.id, []))
        )
    return out


def explanation_dict(row: Any, score_list: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "text": row.text,
        "status": row.status,
        "current": bool(row.is_current),
        "explainer": {
            "backend": row.backend,
            "model": row.model,
            "prompt_format": row.prompt_format,
            "prompt_version": row.prompt_version,
        },
        "created_at": row.created_at,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "scores": score_list,
    }


def unpack_predictions(blob: bytes) -> list[dict[str, Any]]:
    return json.loads(zlib.decompress(blob))


def score_record(conn: Connection, score_id: int) -> dict[str, Any]:
    """A score with its explanation's key and every stored prediction."""
    row = conn.execute(
        select(
            explanation_scores,
            explanations.c.sae_id,
            explanations.c.feature,
            explanations.c.text,
        )
        .join(explanations, explanations.c.id == explanation_scores.c.explanation_id)
        .where(explanation_scores.c.id == score_id)
    ).first()
    if row is None:
        raise SaescopeError(f"score_id: got {score_id!r}; the store has no such score.")
    data = json.loads(row.data)
    return {
        "id": row.id,
        "explanation_id": row.explanation_id,
        "sae_id": row.sae_id,
        "feature": row.feature,
        "explanation": row.text,
        "scorer": row.scorer,
        "value": row.value,
        "metrics": json.loads(row.metrics),
        "predictions": unpack_predictions(row.predictions),
        "prompt_version": row.prompt_version,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "created_at": row.created_at,
        "n_requests": data.get("n_requests", 0),
        "n_failed": data.get("n_failed", 0),
        "attempts": data.get("attempts", []),
    }


def score_summary(conn: Connection, sae_id: str) -> dict[str, dict[str, Any]]:
    """scorer -> {n, mean, histogram} over the current explanations' newest scores. The bins
    are fixed ([0, 1] in 20, or [-1, 1] in 40 when a value is negative, e.g. a correlation), so
    two SAEs' histograms line up."""
    values: dict[str, list[float]] = {}
    for (_, scorer), value in mirrored_scores(conn, sae_id).items():
        values.setdefault(scorer, [])
        if value is not None:
            values[scorer].append(value)
    return {scorer: _summary(v) for scorer, v in sorted(values.items())}


def _summary(values: list[float]) -> dict[str, Any]:
    array = np.asarray(values, dtype=np.float64)
    low = -1.0 if len(array) and array.min() < 0 else 0.0
    high = max(1.0, float(np.ceil(array.max()))) if len(array) else 1.0
    n_bins = round(HISTOGRAM_BINS * (high - low))
    counts, edges = np.histogram(array, bins=n_bins, range=(low, high))
    return {
        "n": len(values),
        "mean": float(array.mean()) if len(array) else None,
        "histogram": {"edges": np.round(edges, 6).tolist(), "counts": counts.tolist()},
    }


def n_with_current(conn: Connection, sae_id: str, kind: str) -> int:
    return conn.execute(
        select(func.count()).where(
            and_(
                explanations.c.sae_id == sae_id,
                explanations.c.kind == kind,
                explanations.c.is_current.is_(True),
            )
        )
    ).scalar_one()
