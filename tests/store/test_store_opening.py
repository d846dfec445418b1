"""Opening a store changes nothing it then refuses, and two processes migrating one old store at
once both succeed (the second waits for the first's lock and finds the work done)."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys

import pytest

from saescope.errors import SaescopeError
from saescope.store import open_store
from saescope.store.schema import SCHEMA_VERSION
from tests.store.store_data import assert_same_analysis, make_analysis
from tests.store.test_store_errors import downgrade


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_sqlite_file_that_is_not_a_store_is_left_as_it_was(tmp_path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
        conn.execute("INSERT INTO users VALUES (1)")
    before = digest(other)
    with pytest.raises(SaescopeError, match="not a saescope feature store"):
        open_store(other)
    assert digest(other) == before
    assert not (tmp_path / "other.db-wal").exists()
    with sqlite3.connect(other) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_an_empty_file_is_refused_without_being_written_when_not_creating(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(
        SaescopeError, match=r"empty.db is not a saescope feature store: it is empty"
    ):
        open_store(empty, create=False)
    assert empty.stat().st_size == 0
    with open_store(empty) as store:  # creating is what create=True is for
        assert store.list_saes() == []


def test_a_new_sqlite_store_is_in_wal_mode(tmp_path):
    open_store(tmp_path / "features.db").close()
    with sqlite3.connect(tmp_path / "features.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


OPEN = "import sys; from saescope.store import open_store; open_store(sys.argv[1]).close()"


def test_processes_migrating_one_store_at_once_all_succeed(store_url, store):
    analyses = [make_analysis(sae_id=f"sae-{i}", d_sae=512, seed=i) for i in range(3)]
    for analysis in analyses:
        store.write_analysis(analysis)
    downgrade(store, 1)
    store.close()
    openers = [
        subprocess.Popen([sys.executable, "-c", OPEN, store_url], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    for opener in openers:
        assert opener.wait(timeout=120) == 0, opener.stderr.read()
    with open_store(store_url) as migrated:
        with migrated.engine.connect() as conn:
            version = conn.exec_driver_sql(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).scalar()
        assert version == str(SCHEMA_VERSION)
        for analysis in analyses:
            assert_same_analysis(migrated.load_analysis(analysis.sae_id), analysis)
