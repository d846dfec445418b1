"""The run's training metrics (metrics.jsonl) as records and as the training-curves PNG."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

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
def training_png(request: Request) -> Response:
    """The run's training_curves.png, drawn here from metrics.jsonl when the run has none."""
    source = source_of(request)
    if source.curves_png is not None and source.curves_png.exists():
        return FileResponse(source.curves_png, media_type="image/png")
    if source.metrics_path is None or not has_curves(source):
        raise NotFound(
            "training curves: this viewer's source has no training metrics (metrics.jsonl)."
        )
    return Response(drawn_curves(source.metrics_path), media_type="image/png")


_drawn: dict[tuple[str, int], bytes] = {}  # (metrics path, its mtime in ns) -> the PNG
_drawing = threading.Lock()


def drawn_curves(metrics_path: Path) -> bytes:
    """The curves of metrics.jsonl as PNG bytes, drawn once per version of the file. One
    drawing at a time (pyplot's figures are global state, and requests come from a thread
    pool), each into a temp file of its own, read back and removed."""
    key = (str(metrics_path), metrics_path.stat().st_mtime_ns)
    with _drawing:
        if key not in _drawn:
            with tempfile.TemporaryDirectory(prefix="saescope-curves-") as folder:
                png = Path(folder) / "training_curves.png"
                plot_training_curves(metrics_path, png)
                _drawn.clear()  # only the newest version is kept
                _drawn[key] = png.read_bytes()
        return _drawn[key]
