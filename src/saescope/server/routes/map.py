"""GET /api/saes/{sae_id}/map: the 2-D map of an SAE's decoder directions, computed in the
background on first request (202 until it is ready)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from saescope.sae import load_sae
from saescope.server.engine import LiveUnavailable
from saescope.server.routes.common import (
    brief_of,
    cache_of,
    engine_or_none,
    json_bytes,
    maps_of,
    source_of,
)
from saescope.server.schemas import FeatureMap, MapComputing, MapFailed, error_responses

router = APIRouter(tags=["map"])


@router.get(
    "/api/saes/{sae_id:path}/map",
    response_model=FeatureMap,
    responses={
        **error_responses(404, 409, 422),
        202: {"model": MapComputing, "description": "still computing: poll again"},
        500: {"model": MapFailed, "description": "the projection failed"},
    },
)
def feature_map(request: Request, sae_id: str) -> Response:
    """The 2-D map of the decoder directions; 202 while it is computed (poll again)."""
    brief_of(request, sae_id)
    store = source_of(request).store
    held = maps_of(request).get(sae_id, decoder(request, sae_id), lambda: store.densities(sae_id))
    if held is None:
        return JSONResponse({"sae_id": sae_id, "status": "computing"}, status_code=202)
    ok, body = held
    if not ok:
        return Response(body, media_type="application/json", status_code=500)
    cache = cache_of(request)

    def with_labels() -> dict[str, Any]:
        layout = orjson.loads(body)
        texts = cache.texts(sae_id)
        return {**layout, "labels": [texts.short_text(f) for f in range(len(layout["x"]))]}

    # the layout is computed once; its labels are read again after each write of the SAE
    # (the cache drops ("map", sae_id) then), so a new label shows without a restart
    return json_bytes(cache.get(("map", sae_id), with_labels))


def decoder(request: Request, sae_id: str) -> Callable[[], np.ndarray]:
    """W_dec [d_sae, d_in] of an SAE, read when called (the map needs the weights, not the
    model): the live engine's copy when it holds one in this process, else its folder's."""
    engine = engine_or_none(request)
    held = engine.decoder(sae_id) if engine is not None else None
    if held is not None:
        return held
    folder = source_of(request).sae_dirs.get(sae_id)
    if folder is None:
        raise LiveUnavailable(
            f"the feature map needs the SAE's weights: none found for {sae_id!r} (looked in "
            "its analysis's source folder and the run directory)."
        )
    return lambda: load_sae(folder).W_dec.detach().float().numpy()
