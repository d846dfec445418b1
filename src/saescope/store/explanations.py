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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, fields, is_dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, bindparam, delete, func, select, update

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


def to_json(obj: Any) -> str:
    """JSON text of `obj`, dataclasses and numpy included; a non-finite float becomes null."""
    try:  # the fast path: the encoder asks _shallow only for what it cannot write itself
        return json.dumps(obj, default=_shallow, allow_nan=False)
    except ValueError:  # a NaN or infinity somewhere
        return json.dumps(plain(obj), allow_nan=False)


def _shallow(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in fields(obj)}
    if isinstance(obj, np.generic | np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple | set):
        return list(obj)
    raise TypeError(f"cannot store a {type(obj).__name__} as JSON")


def check_kind(kind: str) -> None:
    if kind not in EXPLANATION_KINDS:
        raise ConfigError("kind", kind, f"one of {', '.join(EXPLANATION_KINDS)}")


def check_feature(conn: Connection, sae_id: str, feature: int) -> None:
    check_features(conn, sae_id, [feature])


# --- writing -----------------------------------------------------------------------------


def explanation_values(
    sae_id: str,
    feature: int,
    text: str | None,
    *,
    kind: str = "explanation",
    explainer: Any = None,
    status: str = "ok",
    created_at: float | str | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    data: dict[str, Any] | None = None,
    current: bool = True,
) -> dict[str, Any]:
    """An explanations row. explainer: an autointerp Explainer (backend, model, prompt_format,
    prompt_version), or None for one set by hand. Only an explanation with text is current."""
    check_kind(kind)
    return {
        "sae_id": sae_id,
        "feature": int(feature),
        "kind": kind,
        "text": text,
        "status": status,
        "backend": explainer.backend if explainer else MANUAL_BACKEND,
        "model": explainer.model if explainer else "",
        "prompt_format": explainer.prompt_format if explainer else "",
        "prompt_version": int(explainer.prompt_version) if explainer else 0,
        "created_at": iso_from_timestamp(created_at),
        "prompt_tokens": int(prompt_tokens),
        "completion_tokens": int(completion_tokens),
        "is_current": bool(current and text),
        "data": to_json(data or {}),
    }


def insert_explanations(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert explanation rows (explanation_values) in one statement; returns their ids, in
    order. A current row takes over from its feature's current one of its kind (the last of
    several current rows of one feature and kind in `rows` wins)."""
    if not rows:
        return []
    last: dict[tuple[int, str], int] = {
        (row["feature"], row["kind"]): i for i, row in enumerate(rows) if row["is_current"]
    }
    for i, row in enumerate(rows):
        row["is_current"] = last.get((row["feature"], row["kind"])) == i
    sae_ids = {row["sae_id"] for row in rows}
    for sae_id in sae_ids:
        for kind in EXPLANATION_KINDS:
            taken = [f for (f, k) in last if k == kind]
            for chunk in _chunks(taken):
                conn.execute(
                    update(explanations)
                    .where(
                        explanations.c.sae_id == sae_id,
                        explanations.c.kind == kind,
                        explanations.c.feature.in_(chunk),
                        explanations.c.is_current.is_(True),
                    )
                    .values(is_current=False)
                )
    inserted = conn.execute(
        explanations.insert().returning(explanations.c.id, sort_by_parameter_order=True), rows
    )
    return [int(row.id) for row in inserted]


def score_values(
    explanation_id: int,
    scorer: str,
    value: float | None,
    *,
    metrics: dict[str, Any],
    predictions: Sequence[Any],
    model: str = "",
    prompt_version: int = 0,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An explanation_scores row; predictions: Prediction dataclasses or their dicts."""
    if not isinstance(scorer, str) or not scorer.strip():
        raise ConfigError("scorer", scorer, "a non-empty name such as detection")
    if value is not None:
        value = float(value)
        value = value if math.isfinite(value) else None
    return {
        "explanation_id": int(explanation_id),
        "scorer": scorer,
        "model": model,
        "value": value,
        "metrics": to_json(metrics),
        "predictions": zlib.compress(to_json(list(predictions)).encode()),
        "prompt_version": int(prompt_version),
        "prompt_tokens": int(prompt_tokens),
        "completion_tokens": int(completion_tokens),
        "created_at": now_iso(),
        "data": to_json(data or {}),
    }


def insert_scores(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    if not rows:
        return []
    inserted = conn.execute(
        explanation_scores.insert().returning(
            explanation_scores.c.id, sort_by_parameter_order=True
        ),
        rows,
    )
    return [int(row.id) for row in inserted]


def insert_results(conn: Connection, sae_id: str, results: Sequence[Any], current: bool) -> int:
    """Store auto-interp FeatureResults of one SAE: explanations, then their scores; the scores
    of a scoring-only result go to its feature's current explanation (once this batch's
    explanations are in). Returns the rows written."""
    explained = [r for r in results if r.explanation is not None]
    ids = insert_explanations(
        conn,
        [
            explanation_values(
                sae_id,
                r.feature,
                r.explanation.text,
                kind="label" if r.explanation.explainer.prompt_format == "label" else "explanation",
                explainer=r.explanation.explainer,
                status=r.explanation.status,
                created_at=r.explanation.created_at,
                prompt_tokens=r.explanation.prompt_tokens,
                completion_tokens=r.explanation.completion_tokens,
                data={"attempts": r.explanation.attempts, "examples": r.explanation.examples},
                current=current,
            )
            for r in explained
        ],
    )
    # explain_features scores with the backend that explained
    targets = [(r, i, r.explanation.explainer.model) for r, i in zip(explained, ids, strict=True)]
    scoring_only = [r for r in results if r.explanation is None and r.scores]
    if scoring_only:
        currents = current_ids(conn, sae_id, [r.feature for r in scoring_only], "explanation")
        for r in scoring_only:
            if r.feature not in currents:
                raise SaescopeError(
                    f"results: feature {r.feature} of {sae_id!r} has scores but no explanation, "
                    "and the store holds no current explanation to attach them to; store the "
                    "explanation first (set_explanation or add_explanation)."
                )
            # a scoring-only result does not say which LLM scored it
            targets.append((r, currents[r.feature], ""))
    score_rows = [
        score_values(
            explanation_id,
            score.scorer,
            score.value,
            metrics=score.metrics,
            predictions=score.predictions,
            model=model,
            prompt_version=score.prompt_version,
            prompt_tokens=score.prompt_tokens,
            completion_tokens=score.completion_tokens,
            data={
                "n_requests": score.n_requests,
                "n_failed": score.n_failed,
                "attempts": score.attempts,
            },
        )
        for r, explanation_id, model in targets
        for score in r.scores
    ]
    insert_scores(conn, score_rows)
    return len(ids) + len(score_rows)


def check_features(conn: Connection, sae_id: str, feature_ids: Iterable[int]) -> None:
    """Refuse features the SAE does not have, naming the first and the SAE's range."""
    wanted = sorted(set(feature_ids))
    known: set[int] = set()
    for chunk in _chunks(wanted):
        known.update(
            conn.execute(
                select(features.c.feature).where(
                    features.c.sae_id == sae_id, features.c.feature.in_(chunk)
                )
            ).scalars()
        )
    missing = [f for f in wanted if f not in known]
    if missing:
        d_sae = conn.execute(select(saes.c.d_sae).where(saes.c.sae_id == sae_id)).scalar_one()
        raise SaescopeError(
            f"feature: got {missing[0]!r}; SAE {sae_id!r} has features 0..{d_sae - 1}."
        )


def _chunks(ids: Sequence[int], size: int = 1000) -> Iterator[list[int]]:
    """Feature ids a bounded number at a time (an IN list of every feature of a 32k SAE is
    slow to build and, on SQLite, near its limit of bound values)."""
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


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


def current_ids(conn: Connection, sae_id: str, feature_ids: list[int], kind: str) -> dict[int, int]:
    """feature -> id of its current explanation of `kind`, for those that have one."""
    return _current_column(conn, sae_id, feature_ids, kind, explanations.c.id)


def _current_column(
    conn: Connection, sae_id: str, feature_ids: list[int], kind: str, column: Any
) -> dict[int, Any]:
    """feature -> `column` of its current explanation of `kind`, for those that have one."""
    found: dict[int, Any] = {}
    for chunk in _chunks(sorted(set(feature_ids))):
        found.update(
            conn.execute(
                select(explanations.c.feature, column).where(
                    explanations.c.sae_id == sae_id,
                    explanations.c.feature.in_(chunk),
                    explanations.c.kind == kind,
                    explanations.c.is_current.is_(True),
                )
            ).all()
        )
    return found


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
    for chunk in _chunks(sorted(set(feature_ids))):
        _sync_chunk(conn, sae_id, chunk)
    bump_written_at(conn, sae_id)


_SET_MIRRORS = (
    features.update()
    .where(features.c.sae_id == bindparam("b_sae_id"), features.c.feature == bindparam("b_feature"))
    .values(explanation=bindparam("b_explanation"), label=bindparam("b_label"))
)


def _sync_chunk(conn: Connection, sae_id: str, ids: list[int]) -> None:
    texts = {kind: _current_of(conn, sae_id, ids, kind) for kind in EXPLANATION_KINDS}
    conn.execute(
        _SET_MIRRORS,
        [
            {
                "b_sae_id": sae_id,
                "b_feature": f,
                "b_explanation": texts["explanation"].get(f),
                "b_label": texts["label"].get(f),
            }
            for f in ids
        ],
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
    if not names:
        return
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


def _current_of(conn: Connection, sae_id: str, ids: list[int], kind: str) -> dict[int, str]:
    return _current_column(conn, sae_id, ids, kind, explanations.c.text)


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
            explanation_scores.c.model,
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
                "model": score.model,
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
        "model": row.model,
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
