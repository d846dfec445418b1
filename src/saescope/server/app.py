"""The viewer's FastAPI app: a JSON API over the feature store, live inference, and the
built web UI, all from one origin. `create_app` builds it; `serve` runs it with uvicorn.

Store reads are plain functions (FastAPI runs them in its thread pool) answered from a
bounded cache of JSON bytes, warmed in the background at start; a cached feature page is
answered straight from the event loop (PageFastPath), before any routing. Everything that runs
the model goes to the inference worker, a process of its own (saescope.server.worker), so a
forward never holds up a page. OpenAPI docs at /docs.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from saescope.errors import ConfigError, SaescopeError
from saescope.inference.steering import MAX_NEW_TOKENS, STEER_MODES
from saescope.models import HookedModel
from saescope.sae import SAE, load_sae
from saescope.server.cache import DEFAULT_MAX_BYTES, CachedStore, panels_key
from saescope.server.engine import FeatureNotFound, LiveUnavailable, TextTooLong
from saescope.server.feature_map import FeatureMaps
from saescope.server.sources import ViewerSource, open_source
from saescope.server.worker import LiveEngine, ProcessEngine, ThreadEngine
from saescope.store import FeatureStore
from saescope.runs.metrics import plot_training_curves, read_metrics

API_TITLE = "saescope viewer"


class NotFound(SaescopeError):
    """An unknown SAE or feature (HTTP 404)."""


# --- request bodies ----------------------------------------------------------------------


class TextRequest(BaseModel):
    text: str = Field(description="the text to run through the model (limits: see /api/limits)")


class TopFeaturesRequest(TextRequest):
    k: int = Field(8, ge=1, le=64, description="features listed per token")


class PromptRequest(TextRequest):
    position: int | None = Field(None, description="token shown first (default: the last but one)")
    n_rows: int = Field(10, ge=1, le=50, description="features in each ranking")


class SteerRequest(BaseModel):
    prompt: str
    feature: int = Field(ge=0)
    mode: Literal["clamp", "scale"] = "clamp"
    value: float = Field(10.0, allow_inf_nan=False)
    max_new_tokens: int = Field(24, ge=1, le=MAX_NEW_TOKENS)


# --- the app ------------------------------------------------------------------------------


def create_app(
    store_or_run: str | Path | FeatureStore,
    *,
    model: HookedModel | None = None,
    saes: dict[str, SAE] | None = None,
    sae_dirs: dict[str, str | Path] | None = None,
    live: bool = True,
    threads: int = 1,
    live_nice: int = 5,
    warm: bool = True,
    cache_bytes: int = DEFAULT_MAX_BYTES,
    web_dir: str | Path | None = None,
) -> FastAPI:
    """The viewer app on a run directory, store file / URL or open store.

    The model(s) and SAEs load here, once: in the inference worker process (`threads` torch
    threads, niceness raised by `live_nice`), or, when `model` / `saes` pass ones already
    loaded, on a thread of this process. `live=False` serves the store alone. `warm` fills
    the page cache (`cache_bytes`) in the background. `web_dir` is the built web UI
    (default: the one inside the package, when built)."""
    source = open_source(store_or_run, sae_dirs)
    engine: LiveEngine | None = None
    if live and (model is not None or saes):
        engine = ThreadEngine(source, model=model, saes=saes)
    elif live:
        engine = ProcessEngine(source, threads=threads, nice=live_nice)
    cache = CachedStore(source.store, max_bytes=cache_bytes)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # noqa: ANN202
        stop = threading.Event()
        if warm:
            threading.Thread(
                target=cache.warm, args=(stop,), daemon=True, name="saescope-warm"
            ).start()
        yield
        stop.set()
        if engine is not None:
            engine.close()

    app = FastAPI(
        title=API_TITLE,
        lifespan=lifespan,
        description="Browse, search and test the features of sparse autoencoders.",
    )
    app.state.source, app.state.engine = source, engine
    app.state.cache, app.state.maps = cache, FeatureMaps()
    _add_error_handlers(app)
    _add_store_routes(app)
    _add_live_routes(app)
    _add_web_ui(app, web_dir)
    app.add_middleware(PageFastPath, cache=cache)
    return app


class PageFastPath:
    """Cached feature pages answered before routing: a page is ready bytes, and FastAPI's
    routing, validation and thread-pool hop would cost more than the page itself. Anything
    not in the cache (and every error) goes on to the app."""

    def __init__(self, app: ASGIApp, cache: CachedStore) -> None:
        self.app, self.cache = app, cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = (
            page_key(scope["path"])
            if scope["type"] == "http" and scope["method"] == "GET"
            else None
        )
        body = self.cache.peek(key) if key is not None and key[1] in self.cache.saes() else None
        if body is None:
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def page_key(path: str) -> tuple | None:
    """The cache key of /api/saes/{sae_id}/features/{f}[/panels], else None."""
    if not path.startswith("/api/saes/"):
        return None
    rest, kind = path[len("/api/saes/") :], "feature"
    if rest.endswith("/panels"):
        rest, kind = rest[: -len("/panels")], "panels"
    sae_id, sep, feature = rest.rpartition("/features/")
    if not sep or not (feature.isascii() and feature.isdigit()):
        return None
    return (kind, sae_id, int(feature))


def _add_error_handlers(app: FastAPI) -> None:
    statuses = [
        (NotFound, 404),
        (FeatureNotFound, 404),
        (TextTooLong, 413),
        (LiveUnavailable, 409),
        (ConfigError, 422),
        (SaescopeError, 400),
    ]

    async def handle(_request: Request, err: Exception) -> JSONResponse:
        status = next(code for kind, code in statuses if isinstance(err, kind))
        return JSONResponse({"detail": str(err)}, status_code=status)

    for kind, _ in statuses:
        app.add_exception_handler(kind, handle)

    async def invalid(_request: Request, err: RequestValidationError) -> JSONResponse:
        # One readable line per problem ("body.k: Input should be ... (got 0)") and the raw list.
        lines = [_problem(e) for e in err.errors()]
        return JSONResponse(
            {"detail": "; ".join(lines), "errors": _jsonable(err.errors())}, status_code=422
        )

    app.add_exception_handler(RequestValidationError, invalid)


def _problem(error: dict[str, Any]) -> str:
    if error["type"] == "json_invalid":
        return f"body: malformed JSON ({error['msg']} at character {error['loc'][-1]})"
    where = ".".join(str(p) for p in error["loc"])
    got = (
        f" (got {error['input']!r})"
        if not isinstance(error.get("input"), dict | type(None))
        else ""
    )
    return f"{where}: {error['msg']}{got}"


def _jsonable(errors: Any) -> Any:
    return [{"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]} for e in errors]


def _json(body: bytes) -> Response:
    return Response(content=body, media_type="application/json")


def _cache(request: Request) -> CachedStore:
    return request.app.state.cache


def _brief(request: Request, sae_id: str) -> dict[str, Any]:
    saes = _cache(request).saes()
    if sae_id not in saes:
        held = ", ".join(sorted(saes)) or "none"
        raise NotFound(f"sae_id: no SAE {sae_id!r} in this store; it holds: {held}.")
    return saes[sae_id]


def _check_feature(request: Request, sae_id: str, feature: int) -> None:
    d_sae = _brief(request, sae_id)["d_sae"]
    if not 0 <= feature < d_sae:
        raise NotFound(f"feature: got {feature}; SAE {sae_id!r} has features 0..{d_sae - 1}.")


def _engine(request: Request) -> LiveEngine:
    engine = request.app.state.engine
    if engine is None:
        raise LiveUnavailable(
            "live inference is off: the viewer was started without the model (live=False)."
        )
    return engine


def _decoder(request: Request, sae_id: str) -> Callable[[], Any]:
    """W_dec [d_sae, d_in] of an SAE, as a numpy array when called (the feature map needs the
    weights, not the model): the in-process engine's SAE, else read from its folder."""
    engine = request.app.state.engine
    if isinstance(engine, ThreadEngine) and sae_id in engine.models.saes:
        sae = engine.models.saes[sae_id]
        return lambda: sae.W_dec.detach().float().numpy()
    folder = request.app.state.source.sae_dirs.get(sae_id)
    if folder is None:
        raise LiveUnavailable(
            f"the feature map needs the SAE's weights: none found for {sae_id!r} (looked in "
            "its analysis's source folder and the run directory)."
        )
    return lambda: load_sae(folder).W_dec.detach().float().numpy()


def has_curves(source: ViewerSource) -> bool:
    """Training curves to show: the run's PNG, or training records in its metrics.jsonl."""
    if source.curves_png is not None and source.curves_png.exists():
        return True
    return bool(source.metrics_path and read_metrics(source.metrics_path))


# --- store routes --------------------------------------------------------------------------


def _add_store_routes(app: FastAPI) -> None:
    @app.get("/api/health", tags=["store"])
    def health(request: Request) -> dict[str, Any]:
        cache = _cache(request)
        return {
            "ok": True,
            "saes": len(cache.saes()),
            "cached": len(cache),
            "cached_mb": round(cache.bytes / 2**20, 1),
            "warming": cache.warming,
        }

    @app.get("/api/limits", tags=["live"])
    def limits() -> dict[str, Any]:
        from saescope.server.engine import MAX_TEXT_CHARS, MAX_TEXT_TOKENS  # noqa: PLC0415

        return {
            "max_text_chars": MAX_TEXT_CHARS,
            "max_text_tokens": MAX_TEXT_TOKENS,
            "max_new_tokens": MAX_NEW_TOKENS,
            "steer_modes": list(STEER_MODES),
        }

    @app.get("/api/saes", tags=["store"])
    def list_saes(request: Request) -> Response:
        """Every SAE in the store with its evals, and whether live inference is on for it."""
        source: ViewerSource = request.app.state.source
        engine: LiveEngine | None = request.app.state.engine

        def read() -> list[dict[str, Any]]:
            return [
                {
                    **brief,
                    "evals": source.store.sae_summary(sae_id)["evals"],
                    "live": engine is not None and engine.live(sae_id),
                }
                for sae_id, brief in _cache(request).saes().items()
            ]

        # keyed by every SAE's write time: a new or re-written SAE shows at once
        version = tuple((k, v["written_at"]) for k, v in _cache(request).saes().items())
        return _json(_cache(request).get(("saes", version), read))

    @app.get("/api/saes/{sae_id:path}/summary", tags=["store"])
    def summary(request: Request, sae_id: str) -> Response:
        """An SAE's overview: info, corpus, evals, density histogram, live inference state."""
        _brief(request, sae_id)
        source: ViewerSource = request.app.state.source
        engine: LiveEngine | None = request.app.state.engine

        def read() -> dict[str, Any]:
            return {
                **source.store.sae_summary(sae_id),
                "live": engine is not None and engine.live(sae_id),
                "live_unavailable": None if engine is None else engine.unavailable.get(sae_id),
                "has_training_curves": has_curves(source),
            }

        return _json(_cache(request).get(("summary", sae_id), read))

    @app.get("/api/saes/{sae_id:path}/features/{feature}", tags=["store"])
    def feature_page(request: Request, sae_id: str, feature: int) -> Response:
        """One feature's full panel data: statistics, histograms, logit tables, every example."""
        _check_feature(request, sae_id, feature)
        store = request.app.state.source.store
        return _json(
            _cache(request).get(
                ("feature", sae_id, feature), lambda: store.feature(sae_id, feature)
            )
        )

    @app.get("/api/saes/{sae_id:path}/features/{feature}/panels", tags=["store"])
    def feature_panels(request: Request, sae_id: str, feature: int) -> Response:
        """One feature as the panels render it (the dashboards' DashboardData, one feature)."""
        _check_feature(request, sae_id, feature)
        store = request.app.state.source.store

        cache = _cache(request)
        return _json(
            cache.get(
                panels_key(sae_id, feature),
                lambda: cache.panels(sae_id, store.feature(sae_id, feature)),
            )
        )

    @app.get("/api/saes/{sae_id:path}/features", tags=["store"])
    def feature_list(
        request: Request,
        sae_id: str,
        sort_by: str = "density",
        descending: bool = True,
        min_density: Annotated[float | None, Query(ge=0, le=1)] = None,
        max_density: Annotated[float | None, Query(ge=0, le=1)] = None,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> Response:
        """A page of features, sorted by density, max_act, mean_act, feature or a stored score."""
        _brief(request, sae_id)
        store = request.app.state.source.store
        key = ("features", sae_id, sort_by, descending, min_density, max_density, offset, limit)
        return _json(
            _cache(request).get(
                key,
                lambda: store.features(
                    sae_id,
                    sort_by=sort_by,
                    descending=descending,
                    min_density=min_density,
                    max_density=max_density,
                    offset=offset,
                    limit=limit,
                ),
            )
        )

    @app.get("/api/search", tags=["store"])
    def search(
        request: Request,
        q: Annotated[str, Query(min_length=1, max_length=200)],
        sae_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 20,
    ) -> Response:
        """Features whose explanation, top tokens or top contexts contain `q`."""
        if sae_id is not None:
            _brief(request, sae_id)
        store = request.app.state.source.store
        if not q.strip():
            raise ConfigError("q", q, "a search text with at least one non-space character")
        return _json(
            _cache(request).get(
                ("search", q, sae_id, limit),
                lambda: {"q": q, "results": store.search(q, sae_id=sae_id, limit=limit)},
            )
        )

    @app.get("/api/training", tags=["store"])
    def training(request: Request) -> dict[str, Any]:
        """The run's training metrics (metrics.jsonl, kind "train"), empty without a run."""
        path = request.app.state.source.metrics_path
        return {"records": read_metrics(path) if path else []}

    @app.get("/api/training.png", tags=["store"], response_class=FileResponse)
    def training_png(request: Request) -> FileResponse:
        """The run's training_curves.png, drawn here from metrics.jsonl when the run has none."""
        source: ViewerSource = request.app.state.source
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

    @app.get("/api/saes/{sae_id:path}/map", tags=["live"])
    def feature_map(request: Request, sae_id: str) -> JSONResponse:
        """The 2-D map of the decoder directions; 202 while it is computed (poll again)."""
        _brief(request, sae_id)
        store = request.app.state.source.store
        result = request.app.state.maps.get(
            sae_id, _decoder(request, sae_id), store.densities(sae_id)
        )
        if result is None:
            return JSONResponse({"sae_id": sae_id, "status": "computing"}, status_code=202)
        return JSONResponse(result, status_code=500 if "error" in result else 200)


# --- live routes ---------------------------------------------------------------------------


def _add_live_routes(app: FastAPI) -> None:
    # The longer path first: routes match in order and sae_id may hold slashes.
    @app.post("/api/saes/{sae_id:path}/features/{feature}/activations", tags=["live"])
    async def feature_activations(
        request: Request, sae_id: str, feature: int, body: TextRequest
    ) -> Response:
        """One feature's activation on every token of the text."""
        _check_feature(request, sae_id, feature)
        return _json(await _engine(request).run("one_feature", sae_id, feature, body.text))

    @app.post("/api/saes/{sae_id:path}/activations", tags=["live"])
    async def activations(request: Request, sae_id: str, body: TopFeaturesRequest) -> Response:
        """Per token of the text, its most active features."""
        _brief(request, sae_id)
        return _json(await _engine(request).run("top_features", sae_id, body.text, body.k))

    @app.post("/api/saes/{sae_id:path}/prompt", tags=["live"])
    async def prompt(request: Request, sae_id: str, body: PromptRequest) -> Response:
        """The prompt-centric page: at every token the features ranked by activation, by
        activation quantile (against the stored analysis) and by effect on the next token."""
        _brief(request, sae_id)
        return _json(
            await _engine(request).run("prompt_page", sae_id, body.text, body.position, body.n_rows)
        )

    @app.post("/api/saes/{sae_id:path}/steer", tags=["live"])
    async def steer(request: Request, sae_id: str, body: SteerRequest) -> Response:
        """Greedy continuations of the prompt with the feature clamped or scaled, and without."""
        _check_feature(request, sae_id, body.feature)
        return _json(
            await _engine(request).run(
                "steer",
                sae_id,
                body.prompt,
                body.feature,
                body.mode,
                body.value,
                body.max_new_tokens,
            )
        )


# --- the web UI ----------------------------------------------------------------------------


def default_web_dir() -> Path | None:
    """The viewer build inside the package (saescope/web_dist/viewer), if it was built."""
    folder = Path(str(resources.files("saescope"))) / "web_dist" / "viewer"
    return folder if (folder / "index.html").exists() else None


def _add_web_ui(app: FastAPI, web_dir: str | Path | None) -> None:
    folder = Path(web_dir) if web_dir is not None else default_web_dir()
    if folder is None:

        @app.get("/", include_in_schema=False)
        def no_ui() -> JSONResponse:
            return JSONResponse(
                {
                    "detail": "the web UI is not built (cd web && npm ci && npm run build); "
                    "the API is at /api and its docs at /docs."
                },
                status_code=404,
            )

        return
    app.mount("/", StaticFiles(directory=folder, html=True), name="web")


# --- running it ----------------------------------------------------------------------------


def serve(
    store_or_run: str | Path | FeatureStore,
    host: str = "127.0.0.1",
    port: int = 8000,
    app: FastAPI | None = None,
    log_level: str = "warning",
    **app_options: Any,
) -> None:
    """Serve the viewer (building the app unless given) until interrupted."""
    import uvicorn  # noqa: PLC0415

    app = app or create_app(store_or_run, **app_options)
    print(
        f"saescope viewer: http://{host}:{port}/  (API docs: http://{host}:{port}/docs)", flush=True
    )
    # Keep-alive longer than uvicorn's 5 s: a browser (or a load test) whose connection waits
    # behind slow live requests must not find it closed under it.
    # No access log: a line per request is a large share of a cached page's cost.
    uvicorn.run(
        app, host=host, port=port, log_level=log_level, timeout_keep_alive=30, access_log=False
    )
