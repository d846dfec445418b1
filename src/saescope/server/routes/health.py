"""GET /api/health: is the viewer up, and how full and how warm is its page cache."""

from __future__ import annotations

from fastapi import APIRouter, Request

from saescope.server.routes.common import cache_of
from saescope.server.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/api/health")
def health(request: Request) -> Health:
    cache = cache_of(request)
    return Health(
        ok=True,
        saes=len(cache.saes()),
        cached=len(cache),
        cached_mb=round(cache.bytes / 2**20, 1),
        warming=cache.warming,
    )
