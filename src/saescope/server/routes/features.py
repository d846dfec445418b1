"""An SAE's features from the store: a sorted, filtered page of them, one feature's full page,
and one feature as the panels render it. All answered from the page cache's bytes (a cached
page even before routing: saescope.server.app.PageFastPath)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from saescope.errors import ConfigError, SaescopeError
from saescope.server.cache import panels_key, to_json
from saescope.server.columns import read_row_scores
from saescope.server.routes.common import (
    MAX_ID,
    NotFound,
    brief_of,
    cache_of,
    check_feature,
    json_bytes,
    source_of,
)
from saescope.server.schemas import (
    DashboardData,
    ExplanationScore,
    FeatureList,
    FeaturePage,
    error_responses,
)

router = APIRouter(tags=["features"])


@router.get(
    "/api/saes/{sae_id:path}/features/{feature}",
    response_model=FeaturePage,
    responses=error_responses(404, 422),
)
def feature_page(request: Request, sae_id: str, feature: int) -> Response:
    """One feature's full panel data: statistics, histograms, logit tables, every example."""
    check_feature(request, sae_id, feature)
    store = source_of(request).store
    return json_bytes(
        cache_of(request).get(("feature", sae_id, feature), lambda: store.feature(sae_id, feature))
    )


@router.get(
    "/api/saes/{sae_id:path}/features/{feature}/panels",
    response_model=DashboardData,
    responses=error_responses(404, 422),
)
def feature_panels(request: Request, sae_id: str, feature: int) -> Response:
    """One feature as the panels render it (the dashboards' DashboardData, one feature)."""
    check_feature(request, sae_id, feature)
    store, cache = source_of(request).store, cache_of(request)
    return json_bytes(
        cache.get(
            panels_key(sae_id, feature),
            lambda: cache.panels(sae_id, store.feature(sae_id, feature)),
        )
    )


@router.get(
    "/api/saes/{sae_id:path}/explanation-scores/{score_id}",
    response_model=ExplanationScore,
    responses=error_responses(404, 422),
)
def explanation_score(
    request: Request, sae_id: str, score_id: Annotated[int, Path(ge=0, le=MAX_ID)]
) -> Response:
    """One interp score of an SAE's explanation with every per-example prediction it was
    computed from (the ids are in a feature page's explanations[].scores[].id)."""
    brief_of(request, sae_id)
    try:
        record = source_of(request).store.explanation_score(score_id)
    except SaescopeError as err:
        if not str(err).startswith("score_id:"):  # the store failed: not an unknown id
            raise
        record = None
    if record is None or record["sae_id"] != sae_id:
        raise NotFound(f"score_id: SAE {sae_id!r} has no explanation score {score_id}.")
    return json_bytes(to_json(record))


@router.get(
    "/api/saes/{sae_id:path}/features",
    response_model=FeatureList,
    responses=error_responses(404, 422),
)
def feature_list(
    request: Request,
    sae_id: str,
    sort_by: Annotated[str, Query(max_length=200)] = "density",
    descending: bool = True,
    min_density: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_density: Annotated[float | None, Query(ge=0, le=1)] = None,
    ranges: Annotated[
        list[str] | None,
        Query(
            alias="range",
            max_length=20,
            description="NAME:LOW:HIGH (either bound may be empty), inclusive, repeatable: "
            "keep features whose density, max_act, mean_act or stored score (detection, "
            "fuzzing, simulation…) lies in the range",
        ),
    ] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Response:
    """A page of features, sorted by density, max_act, mean_act, feature or a stored score,
    each with its label and every stored score."""
    brief_of(request, sae_id)
    store, cache = source_of(request).store, cache_of(request)
    bounds = parse_ranges(ranges or [])
    key = (
        "features",
        sae_id,
        sort_by,
        descending,
        min_density,
        max_density,
        tuple(sorted(bounds.items())),
        offset,
        limit,
    )

    def read() -> dict[str, Any]:
        page = store.features(
            sae_id,
            sort_by=sort_by,
            descending=descending,
            min_density=min_density,
            max_density=max_density,
            ranges=bounds,
            offset=offset,
            limit=limit,
        )
        ids = [item["feature"] for item in page["items"]]
        names = cache.summary(sae_id)["score_names"]
        row_scores = read_row_scores(store, sae_id, ids, names)
        for item in page["items"]:
            item["scores"] = row_scores[item["feature"]]
        return page

    return json_bytes(cache.get(key, read))


def parse_ranges(given: list[str]) -> dict[str, tuple[float | None, float | None]]:
    """["detection:0.7:", "density::0.01"] -> {name: (low, high)}; empty bounds are None."""
    bounds: dict[str, tuple[float | None, float | None]] = {}
    for text in given:
        name, *limits = text.rsplit(":", 2)
        try:
            if len(limits) != 2 or not name:
                raise ValueError(text)
            low, high = (float(x) if x.strip() else None for x in limits)
            if any(b is not None and not math.isfinite(b) for b in (low, high)):
                raise ValueError(text)
        except ValueError:
            raise ConfigError(
                "range",
                text,
                "NAME:LOW:HIGH with finite numbers or empty bounds, e.g. detection:0.7:",
            ) from None
        bounds[name] = (low, high)
    return bounds
