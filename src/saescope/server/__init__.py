"""The web viewer: a FastAPI app serving the feature store, live inference and the web UI."""

from saescope.server.app import create_app, serve

__all__ = ["create_app", "serve"]
