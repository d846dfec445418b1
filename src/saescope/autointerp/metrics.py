"""Scores from per-example predictions: classification metrics for detection and fuzzing, and
the correlation of simulated with true activations. Pure functions of what a result stores, so
every score can be recomputed from it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def classification_metrics(
    labels: Sequence[bool],
    predictions: Sequence[bool | None],
    probabilities: Sequence[float | None],
) -> dict[str, float | int | None]:
    """Confusion counts, accuracy, precision, recall, F1, balanced accuracy over the examples the
    model answered (prediction not None); AUC over those with a probability, when every answered
    example has one and both classes occur. A metric whose denominator is 0 is None."""
    answered = [(y, p) for y, p in zip(labels, predictions, strict=True) if p is not None]
    tp = sum(1 for y, p in answered if y and p)
    fp = sum(1 for y, p in answered if not y and p)
    tn = sum(1 for y, p in answered if not y and not p)
    fn = sum(1 for y, p in answered if y and not p)
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    specificity = _ratio(tn, tn + fp)
    f1 = (
        None
        if precision is None or recall is None or precision + recall == 0
        else 2 * precision * recall / (precision + recall)
    )
    balanced = None if recall is None or specificity is None else (recall + specificity) / 2
    scored = [
        (y, q)
        for y, p, q in zip(labels, predictions, probabilities, strict=True)
        if p is not None and q is not None
    ]
    auc = (
        roc_auc([y for y, _ in scored], [q for _, q in scored])
        if len(scored) == len(answered)
        else None
    )
    return {
        "n": len(labels),
        "n_answered": len(answered),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "accuracy": _ratio(tp + tn, len(answered)),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "balanced_accuracy": balanced,
        "auc": auc,
    }


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def roc_auc(labels: Sequence[bool], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties count half.
    None unless both classes occur."""
    positives = [s for y, s in zip(labels, scores, strict=True) if y]
    negatives = [s for y, s in zip(labels, scores, strict=True) if not y]
    if not positives or not negatives:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson correlation; None when fewer than 2 points or either side is constant."""
    if len(x) != len(y):
        raise ValueError(f"pearson: {len(x)} predictions for {len(y)} activations")
    n = len(x)
    if n < 2:
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)
