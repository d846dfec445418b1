"""Explain and score features straight into a feature store: what `saescope explain` /
`saescope score` and the demo run.

Each feature's result is written the moment it is finished, so an interrupted run loses
nothing done; run again, the features this explainer already explained (and the scores an
explanation already has) are skipped, and what was in flight is answered from the request
cache. A `Tally` says what a run did, for its summary.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saescope.autointerp.backend import LLMBackend
from saescope.autointerp.cache import Usage
from saescope.autointerp.config import AutoInterpConfig
from saescope.autointerp.prompts import PROMPT_VERSIONS
from saescope.autointerp.results import FeatureResult
from saescope.autointerp.runner import explain_features

LABEL_MAX_TOKENS = 40


@dataclass
class Tally:
    """What a run did: its usage, how many features got what, and every result."""

    usage: Usage = field(default_factory=Usage)
    explained: int = 0
    labelled: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # feature -> why it has no result
    skipped: int = 0  # done earlier by the same explainer / scorers
    unexplained: list[int] = field(default_factory=list)  # scoring: no current explanation
    written: int = 0  # rows the store wrote
    scores: dict[str, list[float]] = field(default_factory=dict)  # scorer -> values
    results: list[FeatureResult] = field(default_factory=list)

    def add(self, result: FeatureResult) -> None:
        self.results.append(result)
        explanation = result.explanation
        if explanation is not None and explanation.text is not None:
            if explanation.explainer.prompt_format == "label":
                self.labelled += 1
            else:
                self.explained += 1
        elif result.error or explanation is not None:
            self.failed[result.feature] = result.error or f"no usable answer ({explanation.status})"  # type: ignore[union-attr]
        for score in result.scores:
            if score.value is not None:
                self.scores.setdefault(score.scorer, []).append(score.value)

    def mean_scores(self) -> dict[str, float]:
        return {name: sum(v) / len(v) for name, v in sorted(self.scores.items()) if v}


def explain_into_store(
    store: Any,
    sae_id: str,
    features: list[int],
    backend: LLMBackend,
    config: AutoInterpConfig,
    *,
    score: bool = False,
    labels: bool | None = None,
    redo: bool = False,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> Tally:
    """Explain the features this explainer has not explained yet (all with `redo`); with
    `score`, score the new explanations per config.scorers, and this explainer's earlier
    current ones that lack a score; with `labels` (default config.labels), a short label too."""
    check_backend(backend)
    tally = Tally()
    todo, unscored = [], {}
    kind = "label" if config.prompt_format == "label" else "explanation"
    for f in features:
        rows = store.explanations(sae_id, f)
        mine = [r for r in rows if r["kind"] == kind and same_explainer(r, backend, config.prompt_format)]  # fmt: skip
        now = current(rows, kind)
        if redo or not mine:
            todo.append(f)
        elif score and now is not None and now in mine and missing_scorers(now, config.scorers):
            unscored[f] = now["text"]
        else:
            tally.skipped += 1
    run: dict[str, Any] = {"cache_dir": cache_dir, "progress": progress}
    _pass(store, sae_id, todo, backend, config.replace(scorers=config.scorers if score else ()), tally, **run)  # fmt: skip
    _pass(store, sae_id, list(unscored), backend, config, tally, explanations=unscored, **run)
    if (config.labels if labels is None else labels) and kind != "label":
        todo = [
            f
            for f in features
            if redo
            or not any(
                r["kind"] == "label" and same_explainer(r, backend, "label")
                for r in store.explanations(sae_id, f)
            )
        ]
        label_config = config.replace(
            prompt_format="label",
            scorers=(),
            explain_max_tokens=min(config.explain_max_tokens, LABEL_MAX_TOKENS),
        )
        _pass(store, sae_id, todo, backend, label_config, tally, **run)
    return tally


def score_into_store(
    store: Any,
    sae_id: str,
    features: list[int],
    backend: LLMBackend,
    config: AutoInterpConfig,
    *,
    redo: bool = False,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> Tally:
    """Score the current explanation of each feature per config.scorers (those that have
    every score already are skipped unless `redo`; those without one are listed in
    tally.unexplained)."""
    check_backend(backend)
    tally = Tally()
    texts: dict[int, str] = {}
    for f in features:
        now = current(store.explanations(sae_id, f))
        if now is None or not now["text"]:
            tally.unexplained.append(f)
        elif redo or missing_scorers(now, config.scorers):
            texts[f] = now["text"]
        else:
            tally.skipped += 1
    _pass(store, sae_id, list(texts), backend, config, tally, explanations=texts,
          cache_dir=cache_dir, progress=progress)  # fmt: skip
    return tally


def check_backend(backend: LLMBackend) -> None:
    """Fail at once, before reading what the store holds, when the backend cannot serve
    (unreachable, no key, unknown model); the in-process model is loaded here."""

    async def check() -> None:
        try:
            await backend.check()
        finally:
            await backend.aclose()

    asyncio.run(check())


def _pass(
    store: Any,
    sae_id: str,
    features: list[int],
    backend: LLMBackend,
    config: AutoInterpConfig,
    tally: Tally,
    *,
    explanations: dict[int, str] | None = None,
    cache_dir: str | Path | None,
    progress: bool,
) -> None:
    """One explain_features run whose results go into the store as each finishes; the
    request budget (config.max_requests) is shared by a command's passes."""
    if not features:
        return
    budget = config.max_requests
    if budget is not None:
        budget = max(0, budget - tally.usage.requests)

    def keep(result: FeatureResult) -> None:
        tally.add(result)
        if writable(result):
            tally.written += store.write_autointerp_results([result])

    explain_features(
        store,
        sae_id,
        features,
        backend,
        config=config,
        explanations=explanations,
        explain=explanations is None,
        cache_dir=cache_dir,
        max_requests=budget,
        progress=progress,
        on_result=keep,
        usage=tally.usage,
    )


def writable(result: FeatureResult) -> bool:
    """An explanation (one that never parsed is kept with its status, never made current),
    or scores of the current one; a feature the run did not get to has nothing to write."""
    return result.explanation is not None or bool(result.scores)


def same_explainer(row: dict[str, Any], backend: LLMBackend, prompt_format: str) -> bool:
    """Whether a stored explanation was made by this backend, model and prompt (version); one
    whose answer never parsed counts too (asking again brings the cached answer back: more
    --n-retries, or --redo with another model, is what helps)."""
    explainer = row.get("explainer") or {}
    return (
        explainer.get("backend") == backend.name
        and explainer.get("model") == backend.model
        and explainer.get("prompt_format") == prompt_format
        and explainer.get("prompt_version") == PROMPT_VERSIONS[prompt_format]
    )


def current(rows: list[dict[str, Any]], kind: str = "explanation") -> dict[str, Any] | None:
    return next((r for r in rows if r.get("current") and r.get("kind") == kind), None)


def missing_scorers(row: dict[str, Any], scorers: tuple[str, ...]) -> tuple[str, ...]:
    have = {s["scorer"] for s in row.get("scores", [])}  # a failed score too: not asked again
    return tuple(s for s in scorers if s not in have)
