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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from saescope.autointerp.backend import BackendError, LLMBackend
from saescope.autointerp.cache import BudgetExceeded, LLMClient, RequestCache, Usage
from saescope.autointerp.config import AutoInterpConfig, make_backend
from saescope.autointerp.examples import ExampleSets, select_examples
from saescope.autointerp.explainer import explain_feature
from saescope.autointerp.results import FeatureResult
from saescope.autointerp.scorers import score_explanation
from saescope.autointerp.store_queries import feature_pages, open_feature_store
from saescope.errors import ConfigError
from saescope.progress import progress_bar

OnResult = Callable[[FeatureResult], None]
PAGES_CHUNK = 256  # feature pages read from the store at a time


def explain_features(
    store_or_run: Any,
    sae_id: str,
    features: Sequence[int],
    backend: LLMBackend | None = None,
    *,
    config: AutoInterpConfig | None = None,
    explanations: dict[int, str] | None = None,
    explain: bool = True,
    cache_dir: str | Path | None = None,
    max_requests: int | None = None,
    progress: bool = True,
    on_result: OnResult | None = None,
    usage: Usage | None = None,
) -> list[FeatureResult]:
    """Explain (and score, per config.scorers) `features` of `sae_id`, reading their examples
    from a feature store (a FeatureStore, a store file or postgresql:// URL, or a run directory
    holding features.db). With `explain=False`, score the given `explanations` instead.

    `backend` defaults to the one config.backend describes; `cache_dir` and `max_requests` to
    config's. `on_result` is called with each feature's result the moment it is finished (to
    write it somewhere before the run ends); `usage`, when given, is where the run's request
    and token counts add up. Results come back in the order of `features`;
    nothing is written to the store here."""
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
            on_result=on_result,
            usage=usage,
        )
    )


async def explain_features_async(
    store_or_run: Any,
    sae_id: str,
    features: Sequence[int],
    backend: LLMBackend | None = None,
    *,
    config: AutoInterpConfig | None = None,
    explanations: dict[int, str] | None = None,
    explain: bool = True,
    cache_dir: str | Path | None = None,
    max_requests: int | None = None,
    progress: bool = True,
    on_result: OnResult | None = None,
    usage: Usage | None = None,
) -> list[FeatureResult]:
    config = config or AutoInterpConfig()
    config.validate()
    if not explain and not explanations:
        raise ConfigError("explanations", explanations, "explanations to score when explain=False")
    backend = backend if backend is not None else make_backend(config.backend)
    cache_dir = cache_dir if cache_dir is not None else config.cache_dir
    max_requests = max_requests if max_requests is not None else config.max_requests
    features = list(features)
    with open_feature_store(store_or_run) as store:
        check_feature_ids(store, sae_id, features)  # before anything is asked
        cache = RequestCache(cache_dir) if cache_dir is not None else None
        client = LLMClient(backend, cache, max_requests)
        if usage is not None:
            client.usage = usage
        try:
            await backend.check()
            return await _run(
                client,
                sae_id,
                features,
                lambda chunk: feature_pages_to_sets(store, sae_id, chunk, config),
                config,
                explanations or {},
                explain,
                progress,
                on_result,
            )
        finally:
            await backend.aclose()  # its connections belong to this event loop
            if cache is not None:
                cache.close()


def check_feature_ids(store: Any, sae_id: str, features: list[int]) -> None:
    """Every id is a feature of the SAE (the pages of a chunk are read only when its turn comes)."""
    known = set(store.feature_ids(sae_id))
    missing = [f for f in features if f not in known]
    if missing:
        feature_pages(store, sae_id, missing[:5])  # raises, naming them and the range


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
    features: list[int],
    load: Callable[[list[int]], list[ExampleSets]],
    config: AutoInterpConfig,
    explanations: dict[int, str],
    explain: bool,
    progress: bool,
    on_result: OnResult | None = None,
) -> list[FeatureResult]:
    # enough features at once that their requests keep every slot of the backend busy
    features_in_flight = asyncio.Semaphore(max(2, client.backend.max_concurrency))
    bar = progress_bar(
        total=len(features), unit="feature", desc="auto-interp", disable=not progress
    )
    started = time.monotonic()
    stop: list[str] = []  # set when the backend failed or the budget ran out

    async def one(sets: ExampleSets) -> FeatureResult:
        async with features_in_flight:
            if stop:
                return FeatureResult(sae_id, sets.feature, None, error=stop[0])
            try:
                result = await _feature(client, sae_id, sets, config, explanations, explain)
            except BackendError as err:
                if not isinstance(err, BudgetExceeded) or not stop:
                    stop.append(str(err))
                return FeatureResult(sae_id, sets.feature, None, error=str(err))
            else:
                if on_result is not None:
                    on_result(result)  # kept at once: an interrupted run loses nothing done
                return result
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

    tasks: list[asyncio.Task[FeatureResult]] = []
    try:
        # pages are read a chunk at a time, the next one while the last is still being
        # worked on: the server stays busy and memory holds about two chunks' examples
        for start in range(0, len(features), PAGES_CHUNK):
            while sum(not t.done() for t in tasks) > PAGES_CHUNK:
                pending = [t for t in tasks if not t.done()]
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            chunk = load(features[start : start + PAGES_CHUNK])
            tasks += [asyncio.create_task(one(s)) for s in chunk]
        results = await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()  # only those left unfinished by an error or an interrupt
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
