"""Explain and score many features, keeping the LLM busy: `explain_features`.

Features are worked on concurrently (each one's requests fanned out), so up to the backend's
concurrency cap requests are in flight at all times, not one at a time. A progress bar shows
features/min, ETA and the token counts. Every answer goes through the request cache, so a run
that was killed or ran out of budget picks up where it stopped when run again. A backend that
cannot serve (unreachable, no key, unknown model) fails the run before any feature starts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saescope.autointerp.backend import BackendError, LLMBackend
from saescope.autointerp.cache import BudgetExceeded, LLMClient, RequestCache
from saescope.autointerp.examples import ExampleSets, select_examples
from saescope.autointerp.explainer import explain_feature
from saescope.autointerp.prompts import EXPLAIN_FORMATS
from saescope.autointerp.results import FeatureResult
from saescope.autointerp.scorers import SCORERS, score_explanation
from saescope.autointerp.store_queries import feature_pages, open_feature_store
from saescope.errors import ConfigError
from saescope.progress import progress_bar


@dataclass
class AutoInterpConfig:
    prompt_format: str = "delphi"  # one of EXPLAIN_FORMATS
    scorers: tuple[str, ...] = ("detection", "fuzzing")  # any of SCORERS
    n_explain: int = 10
    n_activating: int = 10
    n_inactive: int = 10
    n_hard_negatives: int = 5
    n_neighbours: int = 3  # nearest features by decoder cosine that give hard negatives
    batch_size: int = 5  # examples per detection / fuzzing prompt
    threshold: float = 0.3  # mark tokens above this fraction of the example's max
    show_activations: bool = False
    use_top_logits: bool = False
    explain_max_tokens: int = 200
    n_retries: int = 2
    seed: int = 0

    def validate(self) -> None:
        if self.prompt_format not in EXPLAIN_FORMATS:
            raise ConfigError(
                "prompt_format", self.prompt_format, f"one of {', '.join(EXPLAIN_FORMATS)}"
            )
        for scorer in self.scorers:
            if scorer not in SCORERS:
                raise ConfigError("scorers", scorer, f"any of {', '.join(SCORERS)}")
        if not 0 <= self.threshold < 1:
            raise ConfigError("threshold", self.threshold, "a fraction in [0, 1)")
        for name in ("n_explain", "n_activating", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), "an integer >= 1")


def explain_features(
    store_or_run: Any,
    sae_id: str,
    features: Sequence[int],
    backend: LLMBackend,
    *,
    config: AutoInterpConfig | None = None,
    explanations: dict[int, str] | None = None,
    explain: bool = True,
    cache_dir: str | Path | None = None,
    max_requests: int | None = None,
    progress: bool = True,
) -> list[FeatureResult]:
    """Explain (and score, per config.scorers) `features` of `sae_id`, reading their examples
    from a feature store (a FeatureStore, a store file or postgresql:// URL, or a run directory
    holding features.db). With `explain=False`, score the given `explanations` instead.
    Results come back in the order of `features`; nothing is written to the store."""
    return asyncio.run(
        explain_features_async(
            store_or_run,
            sae_id,
            features,
            backend,
            config=config,
            explanations=explanations,
            explain=explain,
            cache_dir=cache_dir,
            max_requests=max_requests,
            progress=progress,
        )
    )


async def explain_features_async(
    store_or_run: Any,
    sae_id: str,
    features: Sequence[int],
    backend: LLMBackend,
    *,
    config: AutoInterpConfig | None = None,
    explanations: dict[int, str] | None = None,
    explain: bool = True,
    cache_dir: str | Path | None = None,
    max_requests: int | None = None,
    progress: bool = True,
) -> list[FeatureResult]:
    config = config or AutoInterpConfig()
    config.validate()
    if not explain and not explanations:
        raise ConfigError("explanations", explanations, "explanations to score when explain=False")
    with open_feature_store(store_or_run) as store:
        sets = feature_pages_to_sets(store, sae_id, list(features), config)
    cache = RequestCache(cache_dir) if cache_dir is not None else None
    client = LLMClient(backend, cache, max_requests)
    try:
        await backend.check()
        return await _run(client, sae_id, sets, config, explanations or {}, explain, progress)
    finally:
        await backend.aclose()  # its connections belong to this event loop
        if cache is not None:
            cache.close()


def feature_pages_to_sets(
    store: Any, sae_id: str, features: list[int], config: AutoInterpConfig
) -> list[ExampleSets]:
    pages = feature_pages(store, sae_id, features)
    neighbour_ids = sorted(
        {n["feature"] for p in pages for n in p["neighbours"][: config.n_neighbours]}
        - set(features)
    )
    by_id = {p["feature"]: p for p in pages}
    by_id.update({p["feature"]: p for p in feature_pages(store, sae_id, neighbour_ids)})
    return [
        select_examples(
            page,
            [by_id[n["feature"]] for n in page["neighbours"][: config.n_neighbours]],
            n_explain=config.n_explain,
            n_activating=config.n_activating,
            n_inactive=config.n_inactive,
            n_hard_negatives=config.n_hard_negatives,
            seed=config.seed,
        )
        for page in pages
    ]


async def _run(
    client: LLMClient,
    sae_id: str,
    all_sets: list[ExampleSets],
    config: AutoInterpConfig,
    explanations: dict[int, str],
    explain: bool,
    progress: bool,
) -> list[FeatureResult]:
    # enough features at once that their requests keep every slot of the backend busy
    features_in_flight = asyncio.Semaphore(max(2, client.backend.max_concurrency))
    bar = progress_bar(
        total=len(all_sets), unit="feature", desc="auto-interp", disable=not progress
    )
    started = time.monotonic()
    stop: list[str] = []  # set when the backend failed or the budget ran out

    async def one(sets: ExampleSets) -> FeatureResult:
        async with features_in_flight:
            if stop:
                return FeatureResult(sae_id, sets.feature, None, error=stop[0])
            try:
                return await _feature(client, sae_id, sets, config, explanations, explain)
            except BackendError as err:
                if not isinstance(err, BudgetExceeded) or not stop:
                    stop.append(str(err))
                return FeatureResult(sae_id, sets.feature, None, error=str(err))
            finally:
                bar.update(1)
                minutes = max(time.monotonic() - started, 1e-9) / 60
                usage = client.usage
                bar.set_postfix_str(
                    f"{bar.n / minutes:.1f} features/min, tokens {usage.prompt_tokens:,} in "
                    f"+ {usage.completion_tokens:,} out, {usage.requests} requests "
                    f"({usage.cached} cached)",
                    refresh=False,
                )

    try:
        results = await asyncio.gather(*(one(s) for s in all_sets))
    finally:
        bar.close()
    if stop and not is_budget_message(stop[0]) and all(r.error for r in results):
        raise BackendError(stop[0])  # nothing was done at all: the backend cannot serve
    return list(results)


def is_budget_message(message: str) -> bool:
    return message.startswith("max_requests")


async def _feature(
    client: LLMClient,
    sae_id: str,
    sets: ExampleSets,
    config: AutoInterpConfig,
    explanations: dict[int, str],
    explain: bool,
) -> FeatureResult:
    if not sets.explain:
        return FeatureResult(
            sae_id, sets.feature, None, error="the feature has no activating examples"
        )
    if explain:
        explanation = await explain_feature(
            client,
            sets,
            sae_id,
            prompt_format=config.prompt_format,
            threshold=config.threshold,
            show_activations=config.show_activations,
            use_top_logits=config.use_top_logits,
            max_tokens=config.explain_max_tokens,
            n_retries=config.n_retries,
        )
        text = explanation.text
    else:
        explanation, text = None, explanations.get(sets.feature)
    result = FeatureResult(sae_id, sets.feature, explanation)
    if text is None:
        return result
    result.scores = list(
        await asyncio.gather(
            *(
                score_explanation(
                    client,
                    scorer,
                    text,
                    sets,
                    batch_size=config.batch_size,
                    threshold=config.threshold,
                    n_retries=config.n_retries,
                    seed=config.seed,
                )
                for scorer in config.scorers
            )
        )
    )
    return result
