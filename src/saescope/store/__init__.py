"""The feature store: SAE analyses in SQLite (default) or PostgreSQL, and the viewer's queries."""

from saescope.store.store import FeatureStore, open_store

__all__ = ["FeatureStore", "open_store"]
