"""The viewer's JSON API, one router per area (each with its OpenAPI tag). `ROUTERS` is the
order they are included in: routes match in order, and an sae_id may hold slashes."""

from fastapi import APIRouter

from saescope.server.routes import features, health, live, saes, search, training
from saescope.server.routes import map as feature_map

ROUTERS: list[APIRouter] = [
    health.router,
    saes.router,
    features.router,
    search.router,
    training.router,
    feature_map.router,
    live.router,
]

__all__ = ["ROUTERS"]
