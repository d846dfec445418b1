"""Per-feature columns the viewer adds to what the store's list and search answer: every
stored score of the listed features (the feature browser shows them all, not only the one it
sorts by), and each feature's short text for the map's hover: its label, else the start of
its explanation.

Two read-only queries on the store's tables (the scores table's primary key serves the first;
the second returns only features with a text), so a 32k-feature SAE costs milliseconds, not
the seconds of listing every feature through FeatureStore.features.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Row, Select, or_, select
from sqlalchemy.exc import SQLAlchemyError

from saescope.errors import SaescopeError
from saescope.store import FeatureStore
from saescope.store.connect import error_reason
from saescope.store.schema import features, scores

SHORT_TEXT_CHARS = 80  # an explanation shown where a label would be is cut to about this


@dataclass
class FeatureTexts:
    """One SAE's labels and explanations by feature (features with one only)."""

    labels: dict[int, str] = field(default_factory=dict)
    explanations: dict[int, str] = field(default_factory=dict)

    def short_text(self, feature: int) -> str | None:
        """What names the feature in a small space: its label, else its explanation's start."""
        label = self.labels.get(feature)
        if label:
            return label
        explanation = self.explanations.get(feature)
        return shorten(explanation) if explanation else None


def shorten(text: str, most: int = SHORT_TEXT_CHARS) -> str:
    """The text on one line, cut at a word boundary near `most` characters."""
    line = " ".join(text.split())
    if len(line) <= most:
        return line
    cut = line[:most].rsplit(" ", 1)[0]
    return (cut or line[:most]) + "…"


def read_texts(store: FeatureStore, sae_id: str) -> FeatureTexts:
    """Every current label and explanation of an SAE (the store's mirrors in `features`)."""
    query = select(features.c.feature, features.c.label, features.c.explanation).where(
        features.c.sae_id == sae_id,
        or_(features.c.label.is_not(None), features.c.explanation.is_not(None)),
    )
    texts = FeatureTexts()
    for row in _rows(store, query):
        if row.label:
            texts.labels[row.feature] = row.label
        if row.explanation:
            texts.explanations[row.feature] = row.explanation
    return texts


def read_row_scores(
    store: FeatureStore, sae_id: str, feature_ids: list[int], names: list[str]
) -> dict[int, dict[str, float | None]]:
    """feature -> every score name -> its value (None where the feature has none)."""
    out: dict[int, dict[str, float | None]] = {f: dict.fromkeys(names) for f in feature_ids}
    if not feature_ids or not names:
        return out
    query = select(scores.c.feature, scores.c.name, scores.c.value).where(
        scores.c.sae_id == sae_id, scores.c.feature.in_(feature_ids)
    )
    for row in _rows(store, query):
        if row.name in out[row.feature]:
            out[row.feature][row.name] = row.value
    return out


def _rows(store: FeatureStore, query: Select) -> list[Row]:
    try:
        with store.engine.connect() as conn:
            return list(conn.execute(query))
    except SQLAlchemyError as err:
        raise SaescopeError(
            f"reading the feature store {store.where} failed: {error_reason(err)}"
        ) from None
