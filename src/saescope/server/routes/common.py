"""What the routers share: the app's state seen from a request (page cache, source, engine),
the 404s of an unknown SAE or feature, ready JSON bytes as a response, and whether the
run has training curves to show."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from saescope.errors import SaescopeError
from saescope.runs.metrics import read_metrics
from saescope.server.cache import CachedStore
from saescope.server.engine import Command, LiveUnavailable
from saescope.server.feature_map import FeatureMaps
from saescope.server.sources import ViewerSource
from saescope.server.worker import LiveEngine


class NotFound(SaescopeError):
    """An unknown SAE or feature (HTTP 404)."""


class ClientGone(SaescopeError):
    """The client of a live request disconnected before its answer (nobody reads the reply)."""


MAX_ID = 10**18 - 1  # ids, offsets and positions: SQLite's integers end at 2**63
DISCONNECT_POLL_S = 0.1


def json_bytes(body: bytes) -> Response:
    """Pre-encoded JSON (the page cache's bytes) as it is: no re-validation, no re-encoding."""
    return Response(content=body, media_type="application/json")


def cache_of(request: Request) -> CachedStore:
    return request.app.state.cache


def source_of(request: Request) -> ViewerSource:
    return request.app.state.source


def maps_of(request: Request) -> FeatureMaps:
    return request.app.state.maps


def engine_or_none(request: Request) -> LiveEngine | None:
    return request.app.state.engine


def engine_of(request: Request) -> LiveEngine:
    """The live engine, or a 409 when the viewer runs without the model."""
    engine = engine_or_none(request)
    if engine is None:
        raise LiveUnavailable(
            "live inference is off: the viewer was started without the model (live=False)."
        )
    return engine


async def run_live(request: Request, command: Command) -> bytes:
    """The live engine's answer to `command`; cancelled in the worker when the client leaves."""
    engine = engine_of(request)
    job = asyncio.ensure_future(engine.run(command, request.client.host if request.client else ""))
    while True:
        done, _ = await asyncio.wait({job}, timeout=DISCONNECT_POLL_S)
        if done:
            return job.result()
        if await request.is_disconnected():
            job.cancel()
            raise ClientGone("the client disconnected before the answer")


def shown(value: object, most: int = 80) -> str:
    """repr(value), cut short: an error answer echoes what was sent, not all of it."""
    text = repr(value)
    return text if len(text) <= most else f"{text[: most - 20]}... ({len(text)} characters)"


def brief_of(request: Request, sae_id: str) -> dict[str, Any]:
    """The SAE's brief from the store (404 naming the SAEs it holds when unknown)."""
    saes = cache_of(request).saes()
    if sae_id not in saes:
        held = ", ".join(sorted(saes)) or "none"
        raise NotFound(f"sae_id: no SAE {shown(sae_id)} in this store; it holds: {held}.")
    return saes[sae_id]


def check_feature(request: Request, sae_id: str, feature: int) -> None:
    d_sae = brief_of(request, sae_id)["d_sae"]
    if not 0 <= feature < d_sae:
        raise NotFound(f"feature: got {feature}; SAE {sae_id!r} has features 0..{d_sae - 1}.")


def has_curves(source: ViewerSource) -> bool:
    """Training curves to show: the run's PNG, or training records in its metrics.jsonl."""
    if source.curves_png is not None and source.curves_png.exists():
        return True
    return bool(source.metrics_path and read_metrics(source.metrics_path))
