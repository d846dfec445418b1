"""The run's training metrics (metrics.jsonl) as records and as the training-curves PNG."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from saescope.runs.metrics import plot_training_curves, read_metrics
from saescope.server.routes.common import NotFound, has_curves, source_of
from saescope.server.schemas import TrainingRecords, error_responses

router = APIRouter(tags=["training"])


@router.get("/api/training")
def training(request: Request) -> TrainingRecords:
    """The run's training metrics (metrics.jsonl, kind "train"), empty without a run."""
    path = source_of(request).metrics_path
    return TrainingRecords(records=read_metrics(path) if path else [])


@router.get(
    "/api/training.png",
    response_class=FileResponse,
    responses={
        200: {"content": {"image/png": {}}, "description": "the training curves"},
        **error_responses(404),
    },
)
def training_png(request: Request) -> FileResponse:
    """The run's training_curves.png, drawn here from metrics.jsonl when the run has none."""
    source = source_of(request)
    if source.curves_png is not None and source.curves_png.exists():
        return FileResponse(source.curves_png, media_type="image/png")
    if not has_curves(source):
        raise NotFound(
            "training curves: this viewer's source has no training metrics (metrics.jsonl)."
        )
    drawn = Path(tempfile.gettempdir()) / f"saescope-curves-{os.getpid()}-{id(source)}.png"
    if not drawn.exists() or drawn.stat().st_mtime < source.metrics_path.stat().st_mtime:
        plot_training_curves(source.metrics_path, drawn)
    return FileResponse(drawn, media_type="image/png")
