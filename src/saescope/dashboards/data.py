"""The dashboards' compact encoding: the one codec that writes the data the panels receive
(DashboardData; the web side reads it through web/src/panels/types.ts, whose types are
generated from saescope.server.schemas), shaped from the store's feature pages.

Compact by construction, since it is embedded in every HTML file: token strings appear once
in a vocabulary table of the tokens used (`vocab`; every token id below indexes it), floats
are rounded to 4 significant digits of the array's largest value (3 for the hover card's),
only the contexts the layout shows are kept, and the keys repeated thousands of times are
one or two letters:

    Context      t   tokens (vocab indices), one per position
                 a   the feature's activation per position
                 c   the position the context was chosen for
                 l   effect on the next token's log-prob per position (direct path), optional
                 b   top boosted next tokens per position (vocab indices), optional
                 bv  their logit effects
                 s   top suppressed next tokens per position (vocab indices), optional
                 sv  their logit effects
    Ranked       f   feature (or neuron) ids, best first
                 v   their values (cosine, correlation, weight, activation)
    LogitTable   t   tokens (vocab indices)
                 v   their logit effects
    PromptRow    f   the feature id (act, quantile and loss are spelled out)

Everything else is spelled out (FeatureData, QuantileGroup, PromptData, SaeInfo, Layout).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from saescope.dashboards.layout import Layout

SIGNIFICANT = 4
HOVER_SIGNIFICANT = 3


class VocabTable:
    """Token strings -> indices into the table of the strings used so far."""

    def __init__(self) -> None:
        self.strings: list[str] = []
        self._index: dict[str, int] = {}

    def id(self, text: str) -> int:
        found = self._index.get(text)
        if found is None:
            found = self._index[text] = len(self.strings)
            self.strings.append(text)
        return found

    def ids(self, texts: Any) -> Any:
        """Indices of token strings, keeping the nesting ([n] or [n][k])."""
        if isinstance(texts, list):
            return [self.ids(t) for t in texts]
        return self.id(texts)


def rounded(values: Any, significant: int = SIGNIFICANT) -> Any:
    """Floats (nested lists or arrays) rounded to `significant` digits of the largest |value|;
    zeros become int 0 (the shortest JSON)."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return array.tolist()
    finite = np.abs(array[np.isfinite(array)])
    biggest = float(finite.max()) if finite.size else 0.0
    decimals = max(0, significant - 1 - math.floor(math.log10(biggest))) if biggest > 0 else 0
    return _round_nested(array.tolist(), decimals)


def _round_nested(values: Any, decimals: int) -> Any:
    if isinstance(values, list):
        return [_round_nested(v, decimals) for v in values]
    if values == 0 or not math.isfinite(values):
        return 0 if values == 0 else None
    value = round(values, decimals)
    return int(value) if decimals == 0 or value == 0 else value


def number(value: float | None) -> float | None:
    """One float to SIGNIFICANT significant digits (None stays None, NaN becomes None)."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{SIGNIFICANT}g}")


def sae_data(summary: dict[str, Any]) -> dict[str, Any]:
    """The SAE line of a dashboard, from FeatureStore.sae_summary."""
    return {
        "sae_id": summary["sae_id"],
        "model": summary.get("model"),
        "hook_point": summary.get("hook_point"),
        "architecture": summary.get("architecture"),
        "d_sae": summary["d_sae"],
        "d_in": summary["d_in"],
        "n_tokens": summary["n_tokens"],
        "quantile_levels": rounded(summary["quantile_levels"]),
        "neuronpedia_id": summary.get("info", {}).get("neuronpedia_id"),
    }


def context_data(example: dict[str, Any], vocab: VocabTable) -> dict[str, Any]:
    """One example window of a feature page -> a Context (types.ts)."""
    out: dict[str, Any] = {
        "t": vocab.ids(example["tokens"]),
        "a": rounded(example["acts"]),
        "c": example["center"],
    }
    # The hover card's numbers: 3 digits are what it shows, and they are most of the file.
    if example.get("loss_effects") is not None:
        out["l"] = rounded(example["loss_effects"], HOVER_SIGNIFICANT)
    for side, key in (("top_boosted", "b"), ("top_suppressed", "s")):
        if example.get(f"{side}_tokens") is not None:
            out[key] = vocab.ids(example[f"{side}_tokens"])
            out[f"{key}v"] = rounded(example[f"{side}_values"], HOVER_SIGNIFICANT)
    return out


def quantile_groups(
    page: dict[str, Any], vocab: VocabTable, layout: Layout, n_intervals: int | None
) -> list[dict[str, Any]]:
    """The quantile examples grouped by interval, with each interval's activation range and
    (when the number of intervals is known) its share of the feature's non-zero activations."""
    by_interval: dict[int, list[dict[str, Any]]] = {}
    for example in page["examples"]["quantile"]:
        by_interval.setdefault(example["interval"], []).append(example)
    counts = np.asarray(page["act_hist"]["counts"], dtype=np.float64)
    max_act = page["max_act"]
    groups = []
    for interval, examples in sorted(by_interval.items()):
        if n_intervals:
            # equal-width intervals over (0, max_act], as the analysis samples them
            lo, hi = interval * max_act / n_intervals, (interval + 1) * max_act / n_intervals
            share = _histogram_share(counts, max_act, lo, hi)
        else:
            centres = [ex["max_act"] for ex in examples]
            lo, hi, share = min(centres), max(centres), None
        groups.append(
            {
                "interval": interval,
                "lo": number(lo),
                "hi": number(hi),
                "share": number(share),
                "contexts": [context_data(ex, vocab) for ex in examples[: layout.n_per_group]],
            }
        )
    return groups


def _histogram_share(counts: np.ndarray, max_act: float, lo: float, hi: float) -> float | None:
    """Fraction of the histogram's mass whose bin centres fall in (lo, hi]."""
    total = counts.sum()
    if total <= 0 or max_act <= 0:
        return None
    centres = (np.arange(len(counts)) + 0.5) * max_act / len(counts)
    return float(counts[(centres > lo) & (centres <= hi)].sum() / total)


def ranked_values(ids: list[int], values: list[float]) -> dict[str, Any]:
    """A Ranked: ids (best first) and their values."""
    return {"f": list(ids), "v": rounded(values)}


def ranked(
    items: list[dict[str, Any]] | None, id_name: str, value_name: str, n: int
) -> dict[str, Any] | None:
    """A Ranked from the first `n` of a feature page's table rows (None stays None)."""
    if items is None:
        return None
    items = items[:n]
    return ranked_values([item[id_name] for item in items], [item[value_name] for item in items])


def prompt_row(
    feature: int, act: float, quantile: float | None, loss: float | None
) -> dict[str, Any]:
    """A PromptRow: one ranked feature at a prompt position."""
    return {"f": feature, "act": number(act), "quantile": number(quantile), "loss": number(loss)}


def logit_table(rows: list[dict[str, Any]], vocab: VocabTable, n: int) -> dict[str, Any]:
    rows = rows[:n]
    return {"t": vocab.ids([r["token"] for r in rows]), "v": rounded([r["value"] for r in rows])}


def explanation_data(record: dict[str, Any]) -> dict[str, Any] | None:
    """One of a feature page's explanations (FeatureStore.explanations) -> ExplanationData;
    None for a record without text (an explainer that got no usable answer)."""
    if not record.get("text"):
        return None
    explainer = record.get("explainer") or {}
    scores: dict[str, float | None] = {}
    # a scorer run twice on the explanation: its newest score is the one shown
    for score in sorted(record.get("scores") or [], key=lambda s: s.get("id", 0), reverse=True):
        scores.setdefault(score["scorer"], number(score["value"]))
    return {
        "kind": record.get("kind", "explanation"),
        "text": record["text"],
        "current": bool(record.get("current")),
        "backend": explainer.get("backend") or "manual",
        "model": explainer.get("model") or "",
        "prompt_format": explainer.get("prompt_format") or None,
        "created_at": str(record.get("created_at") or ""),
        "scores": scores,
    }


def feature_data(
    page: dict[str, Any], vocab: VocabTable, layout: Layout, n_intervals: int | None = None
) -> dict[str, Any]:
    """A store feature page (FeatureStore.feature) -> FeatureData (types.ts), cut to the layout."""
    hist = page["logits"]["hist"]
    return {
        "id": page["feature"],
        "density": number(page["density"]),
        "max_act": number(page["max_act"]),
        "mean_act": number(page["mean_act"]),
        "explanation": page["explanation"],
        "label": page.get("label"),
        "explanations": [
            found
            for found in map(explanation_data, page.get("explanations") or [])
            if found is not None
        ],
        "scores": {
            name: number(value)
            for name, value in page["scores"].items()
            if number(value) is not None
        },
        "act_hist": {
            "counts": [int(c) for c in page["act_hist"]["counts"]],
            "max": number(page["max_act"]),
        },
        "logit_hist": {
            "counts": [int(c) for c in hist["counts"]],
            "lo": number(hist["range"][0]),
            "hi": number(hist["range"][1]),
        },
        "logits_top": logit_table(page["logits"]["top"], vocab, layout.n_logits),
        "logits_bottom": logit_table(page["logits"]["bottom"], vocab, layout.n_logits),
        "quantiles": rounded(page["quantiles"]["values"]),
        "neighbours": ranked(page["neighbours"], "feature", "cos", layout.n_table),
        "cofiring": ranked(page["cofiring"], "feature", "corr", layout.n_table),
        "neurons": ranked(page["neurons"], "neuron", "weight", layout.n_table),
        "top": [context_data(ex, vocab) for ex in page["examples"]["top"][: layout.n_top]]
        if "top" in layout.panels
        else [],
        "groups": quantile_groups(page, vocab, layout, n_intervals)
        if "quantiles" in layout.panels
        else [],
    }


def n_quantile_intervals(summary: dict[str, Any]) -> int | None:
    """How many equal-width intervals the analysis sampled, when the SAE's record says."""
    for holder in (
        summary.get("info", {}).get("analysis"),
        summary.get("corpus", {}).get("analysis"),
        summary.get("info", {}),
    ):
        if isinstance(holder, dict) and isinstance(holder.get("quantile_intervals"), int):
            return holder["quantile_intervals"]
    return None


def dashboard_data(
    title: str,
    summary: dict[str, Any],
    pages: list[dict[str, Any]],
    layout: Layout,
    vocab: VocabTable | None = None,
    prompt: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything one dashboard file embeds: DashboardData (types.ts)."""
    vocab = vocab or VocabTable()
    n_intervals = n_quantile_intervals(summary)
    features = [feature_data(page, vocab, layout, n_intervals) for page in pages]
    return {
        "version": 1,
        "title": title,
        "sae": sae_data(summary),
        "layout": layout.to_dict(),
        "vocab": vocab.strings,
        "features": features,
        "prompt": prompt,
    }
