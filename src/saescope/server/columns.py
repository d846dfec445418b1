"""Per-feature columns the viewer adds to what the store's list and search answer: every
stored score of every feature (the feature browser shows them all, not only the one it sorts
by), and each feature's short text for the map's hover: its label, else the start of its
explanation. Read from the store's own queries, a page of features at a time, once per
write of the SAE (the page cache keys them by written_at)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from saescope.store import FeatureStore

READ_PAGE = 10_000  # the most rows FeatureStore.features answers at once
SHORT_TEXT_CHARS = 80  # an explanation shown where a label would be is cut to about this


@dataclass
class FeatureColumns:
    """One SAE's columns: scores[name][feature] (features with a value only), and per feature
    its label and explanation (features with one only)."""

    scores: dict[str, dict[int, float | None]] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)
    explanations: dict[int, str] = field(default_factory=dict)

    def row_scores(self, feature: int) -> dict[str, float | None]:
        """Every score of one feature, null where it has none."""
        return {name: values.get(feature) for name, values in self.scores.items()}

    def short_text(self, feature: int) -> str | None:
        """What names the feature in a small space: its label, else its explanation's start."""
        label = self.labels.get(feature)
        if label:
            return label
        explanation = self.explanations.get(feature)
        return shorten(explanation) if explanation else None


def shorten(text: str, most: int = SHORT_TEXT_CHARS) -> str:
    """The text's first line, cut at a word boundary near `most` characters."""
    line = " ".join(text.split())
    if len(line) <= most:
        return line
    cut = line[:most].rsplit(" ", 1)[0]
    return (cut or line[:most]) + "…"


def read_columns(store: FeatureStore, sae_id: str, score_names: list[str]) -> FeatureColumns:
    """An SAE's columns, through FeatureStore.features (the browser's own query)."""
    columns = FeatureColumns()
    for item in _all_rows(store, sae_id, "feature"):
        if item.get("label"):
            columns.labels[item["feature"]] = item["label"]
        if item.get("explanation"):
            columns.explanations[item["feature"]] = item["explanation"]
    for name in score_names:
        # sorted by a score, the store lists the features with a value for it, with the value
        columns.scores[name] = {
            item["feature"]: item.get(name) for item in _all_rows(store, sae_id, name)
        }
    return columns


def _all_rows(store: FeatureStore, sae_id: str, sort_by: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        page = store.features(
            sae_id, sort_by=sort_by, descending=False, offset=len(found), limit=READ_PAGE
        )
        found += page["items"]
        if not page["items"] or len(found) >= page["total"]:
            return found
