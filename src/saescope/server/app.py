"""The viewer's FastAPI app: a JSON API over the feature store, live inference, and the
built web UI, all from one origin. `create_app` builds it; `serve` runs it with uvicorn. The
API's routes are in saescope.server.routes (a router per area), their response shapes in
saescope.server.schemas.

Store reads are plain functions (FastAPI runs them in its thread pool) answered from a
bounded cache of JSON bytes, warmed in the background at start; a cached feature page is
answered straight from the event loop (PageFastPath), before any routing. Everything that runs
the model goes to the inference worker, a process of its own (saescope.server.worker), so a
forward never holds up a page. OpenAPI docs at /docs.
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from saescope.errors import ConfigError, SaescopeError
from saescope.models import HookedModel
from saescope.sae import SAE
from saescope.server.cache import DEFAULT_MAX_BYTES, CachedStore
from saescope.server.engine import Busy, FeatureNotFound, LiveUnavailable, TextTooLong
from saescope.server.feature_map import FeatureMaps
from saescope.server.guard import (
    MAX_BODY_BYTES,
    TOKEN_ENV,
    Guard,
    GuardOptions,
    hosts_for,
    is_loopback,
)
from saescope.server.paths import without_paths
from saescope.server.routes import ROUTERS
from saescope.server.routes.common import ClientGone, NotFound, shown
from saescope.server.sources import open_source
from saescope.server.worker import LiveEngine, LiveTimeout, ProcessEngine, ThreadEngine
from saescope.store import FeatureStore

__all__ = ["API_TITLE", "NotFound", "api_app", "create_app", "page_key", "serve"]

API_TITLE = "saescope viewer"
MAX_DETAIL_CHARS = 1000  # an error answer is a short paragraph, whatever was sent


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
    allowed_hosts: frozenset[str] | None = GuardOptions().allowed_hosts,
    token: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """The viewer app on a run directory, store file / URL or open store.

    The model(s) and SAEs load here, once: in the inference worker process (`threads` torch
    threads, niceness raised by `live_nice`), or, when `model` / `saes` pass ones already
    loaded, on a thread of this process. `live=False` serves the store alone. `warm` fills
    the page cache (`cache_bytes`) in the background. `web_dir` is the built web UI
    (default: the one inside the package, when built). `allowed_hosts` are the Host names
    answered (None: any), `token` the access token every request then needs, and
    `max_body_bytes` the largest request body (saescope.server.guard)."""
    source = open_source(store_or_run, sae_dirs)
    engine: LiveEngine | None = None
    if live and (model is not None or saes):
        engine = ThreadEngine(source, model=model, saes=saes)
    elif live:
        engine = ProcessEngine(source, threads=threads, nice=live_nice)
    cache = CachedStore(source.store, max_bytes=cache_bytes)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        stop = threading.Event()
        if warm:
            threading.Thread(
                target=cache.warm, args=(stop,), daemon=True, name="saescope-warm"
            ).start()
        yield
        stop.set()
        if engine is not None:
            engine.close()

    app = api_app(lifespan)
    app.state.source, app.state.engine = source, engine
    app.state.cache, app.state.maps = cache, FeatureMaps()
    _add_web_ui(app, web_dir)
    app.add_middleware(PageFastPath, cache=cache)
    # last added runs first: nothing, not even a cached page, passes the guard unchecked
    app.add_middleware(
        Guard,
        options=GuardOptions(
            allowed_hosts=allowed_hosts, token=token, max_body_bytes=max_body_bytes
        ),
    )
    return app


def api_app(lifespan: Any = None) -> FastAPI:
    """The FastAPI app with its routers and error handlers, nothing behind it yet (what
    create_app serves, and what saescope.server.openapi reads the schema from)."""
    app = FastAPI(
        title=API_TITLE,
        lifespan=lifespan,
        description="Browse, search and test the features of sparse autoencoders.",
        # fields the compact encoding may leave out stay optional in the schema
        separate_input_output_schemas=False,
    )
    _add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
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


MAX_ID_DIGITS = 18  # feature ids and offsets stay below 10**18 (SQLite integers: < 2**63)


def page_key(path: str) -> tuple | None:
    """The cache key of /api/saes/{sae_id}/features/{f}[/panels], else None."""
    if not path.startswith("/api/saes/"):
        return None
    rest, kind = path[len("/api/saes/") :], "feature"
    if rest.endswith("/panels"):
        rest, kind = rest[: -len("/panels")], "panels"
    sae_id, sep, feature = rest.rpartition("/features/")
    # a long digit string is no cached feature (and int() of 5,000 digits raises)
    if not sep or not (feature.isascii() and feature.isdigit()) or len(feature) > MAX_ID_DIGITS:
        return None
    return (kind, sae_id, int(feature))


def _add_error_handlers(app: FastAPI) -> None:
    statuses = [
        (NotFound, 404),
        (FeatureNotFound, 404),
        (TextTooLong, 413),
        (Busy, 429),
        (LiveTimeout, 503),
        (ClientGone, 499),
        (LiveUnavailable, 409),
        (ConfigError, 422),
        (SaescopeError, 400),
    ]

    async def handle(_request: Request, err: Exception) -> JSONResponse:
        status = next(code for kind, code in statuses if isinstance(err, kind))
        retry = getattr(err, "retry_after_s", None)
        headers = {"Retry-After": str(retry)} if retry is not None else None
        return JSONResponse(
            {"detail": without_paths(str(err))[:MAX_DETAIL_CHARS]},
            status_code=status,
            headers=headers,
        )

    for kind, _ in statuses:
        app.add_exception_handler(kind, handle)

    async def invalid(_request: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, RequestValidationError)  # registered for that class only
        # One readable line per problem ("body.k: Input should be ... (got 0)") and the raw list.
        lines = [without_paths(_problem(e)) for e in err.errors()]
        # a live text over its length limit is "too large" (413), as the worker would say
        too_long = all(e["type"] == "string_too_long" for e in err.errors())
        return JSONResponse(
            {"detail": "; ".join(lines), "errors": _jsonable(err.errors())},
            status_code=413 if too_long else 422,
        )

    app.add_exception_handler(RequestValidationError, invalid)


def _problem(error: dict[str, Any]) -> str:
    if error["type"] == "json_invalid":
        return f"body: malformed JSON ({error['msg']} at character {error['loc'][-1]})"
    where = ".".join(str(p) for p in error["loc"])
    if error["type"] == "string_too_long":
        limit = error.get("ctx", {}).get("max_length")
        return f"{where}: got {len(error['input'])} characters; the limit is {limit} characters."
    got = (
        f" (got {shown(error['input'])})"
        if not isinstance(error.get("input"), dict | type(None))
        else ""
    )
    return f"{where}: {error['msg']}{got}"


def _jsonable(errors: Any) -> Any:
    return [{"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]} for e in errors]


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
    allowed_hosts: list[str] | tuple[str, ...] = (),
    token: str | None = None,
    **app_options: Any,
) -> None:
    """Serve the viewer (building the app unless given) until interrupted. It answers the
    loopback names and `host`, plus `allowed_hosts` ("*": any); `token` (default: the
    SAESCOPE_TOKEN environment variable) is then needed by every request."""
    import uvicorn

    token = token or os.environ.get(TOKEN_ENV) or None
    if not is_loopback(host):
        print(exposure_warning(host, token), file=sys.stderr, flush=True)
    app = app or create_app(
        store_or_run, allowed_hosts=hosts_for(host, allowed_hosts), token=token, **app_options
    )
    link = f"http://{host}:{port}/"
    print(
        f"saescope viewer: {link}{'?token=' + token if token else ''}  (API docs: {link}docs)",
        flush=True,
    )
    # Keep-alive longer than uvicorn's 5 s: a browser (or a load test) whose connection waits
    # behind slow live requests must not find it closed under it.
    # No access log: a line per request is a large share of a cached page's cost.
    uvicorn.run(
        app, host=host, port=port, log_level=log_level, timeout_keep_alive=30, access_log=False
    )


def exposure_warning(host: str, token: str | None) -> str:
    """The loud warning of a viewer bound beyond this machine."""
    lines = [
        f"WARNING: the saescope viewer listens on {host}, not only on this machine: anyone "
        "who can reach this port can browse the store and run the model (live inference).",
    ]
    if token is None:
        lines.append(
            "WARNING: no access token is set: pass --token (or set SAESCOPE_TOKEN) on a shared "
            f"machine or network; e.g. --token {secrets.token_urlsafe(16)}"
        )
    return "\n".join(lines)
