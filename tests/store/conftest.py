"""Store fixtures: every store test runs on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import itertools

import psycopg
import pytest

from saescope.store import open_store

_database_ids = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """A fresh, empty store location: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "features.db")
    server = request.getfixturevalue("postgres_server")
    name = f"store_{next(_database_ids)}"
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.url(name)


@pytest.fixture
def store(store_url):
    with open_store(store_url) as opened:
        yield opened
