"""The SAEs of the store: the list (GET /api/saes) and one SAE's overview (.../summary)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from saescope.server.paths import without_paths
from saescope.server.routes.common import (
    brief_of,
    cache_of,
    engine_or_none,
    has_curves,
    json_bytes,
    source_of,
)
from saescope.server.schemas import SaeBrief, SaeSummary, error_responses

router = APIRouter(tags=["saes"])


def without_server_paths(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary with no path of this machine in it: info.path is left out, the config's
    source_path / dataset_path cut to their last part (a published name stays as it is)."""
    info = {k: v for k, v in summary.get("info", {}).items() if k != "path"}
    if isinstance(info.get("source"), str):
        info["source"] = without_paths(info["source"])
    if isinstance(info.get("cfg"), dict):
        info["cfg"] = {
            k: without_paths(v) if isinstance(v, str) and k.endswith("path") else v
            for k, v in info["cfg"].items()
        }
    return {**summary, "info": info}


def comparable(summary: dict[str, Any]) -> dict[str, Any]:
    """What the SAE list compares SAEs by: evals, explained features, mean interp scores."""
    return {
        "evals": summary["evals"],
        "n_explained": summary.get("n_explained", 0),
        "interp_means": {
            name: held.get("mean") for name, held in summary.get("interp_scores", {}).items()
        },
    }


@router.get("/api/saes", response_model=list[SaeBrief])
def list_saes(request: Request) -> Response:
    """Every SAE in the store with its evals, and whether live inference is on for it."""
    cache, source, engine = cache_of(request), source_of(request), engine_or_none(request)

    def read() -> list[dict[str, Any]]:
        return [
            {
                **brief,
                **comparable(source.store.sae_summary(sae_id)),
                "live": engine is not None and engine.live(sae_id),
            }
            for sae_id, brief in cache.saes().items()
        ]

    # keyed by every SAE's write time: a new or re-written SAE shows at once
    version = tuple((k, v["written_at"]) for k, v in cache.saes().items())
    return json_bytes(cache.get(("saes", version), read))


@router.get(
    "/api/saes/{sae_id:path}/summary",
    response_model=SaeSummary,
    responses=error_responses(404, 422),
)
def summary(request: Request, sae_id: str) -> Response:
    """An SAE's overview: info, corpus, evals, density histogram, live inference state."""
    brief_of(request, sae_id)
    source, engine = source_of(request), engine_or_none(request)

    def read() -> dict[str, Any]:
        return {
            **without_server_paths(source.store.sae_summary(sae_id)),
            "live": engine is not None and engine.live(sae_id),
            "live_unavailable": None
            if engine is None or sae_id not in engine.unavailable
            else without_paths(engine.unavailable[sae_id]),
            "has_training_curves": has_curves(source),
        }

    return json_bytes(cache_of(request).get(("summary", sae_id), read))
