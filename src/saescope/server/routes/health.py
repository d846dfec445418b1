"""GET /api/health: is the viewer up, how full and how warm is its page cache, and the state
of the inference worker (restarted after it died)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from saescope.server.routes.common import cache_of, engine_or_none
from saescope.server.schemas import Health, LiveHealth, Warming

router = APIRouter(tags=["health"])


@router.get("/api/health")
def health(request: Request) -> Health:
    cache, engine = cache_of(request), engine_or_none(request)
    return Health(
        live=None if engine is None else LiveHealth(**engine.health()),
        ok=True,
        saes=len(cache.saes()),
        cached=len(cache),
        cached_mb=round(cache.bytes / 2**20, 1),
        warming=Warming.model_validate(cache.warming),
    )
