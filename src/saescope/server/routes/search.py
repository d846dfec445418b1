"""GET /api/search: features whose explanation, label, top tokens or top contexts contain a
text."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from saescope.errors import ConfigError
from saescope.server.routes.common import brief_of, cache_of, json_bytes, source_of
from saescope.server.schemas import SearchResults, error_responses

router = APIRouter(tags=["search"])


@router.get("/api/search", response_model=SearchResults, responses=error_responses(404, 422))
def search(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    sae_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> Response:
    """Features whose explanation, label, top tokens or top contexts contain `q`."""
    if sae_id is not None:
        brief_of(request, sae_id)
    store = source_of(request).store
    if not q.strip():
        raise ConfigError("q", q, "a search text with at least one non-space character")
    if not q.isprintable():
        raise ConfigError("q", q, "printable text (no NUL or other control characters)")
    cache = cache_of(request)
    # The store matches case-insensitively on the stripped text: one entry per such query.
    # Keyed by the SAE ("*": all) and every SAE's write time, so a re-analysis or a new
    # explanation is searched at once.
    version = tuple((k, v["written_at"]) for k, v in cache.saes().items())
    key = ("search", sae_id or "*", q.strip().casefold(), limit, version)
    return json_bytes(
        cache.get(key, lambda: {"q": q, "results": store.search(q, sae_id=sae_id, limit=limit)})
    )
