"""Bad input to the store: other schema versions, files that are not stores, unreachable
URLs, bad analyses, and a writer killed mid-write (the previous data must survive)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from saescope.errors import SaescopeError
from saescope.store import open_store
from saescope.store.schema import SCHEMA_VERSION
from tests.paths import REPO
from tests.ports import free_port
from tests.postgres_server import PASSWORD
from tests.store.store_data import assert_same_analysis, make_analysis

# A writer that stops (sleeps) inside its transaction once the features are in, to be killed.
KILLED_WRITER = """
import sys, time
sys.path.insert(0, {repo!r})
from tests.store.store_data import make_analysis
from saescope.store import open_store

def hold(done, total):
    print(f"{{done}}/{{total}}", flush=True)
    time.sleep(600)

store = open_store({url!r})
store.write_analysis(make_analysis(seed=7), on_progress=hold)
"""


def set_version(store, version: int) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE meta SET value = '{version}' WHERE key = 'schema_version'")


def test_newer_schema_is_refused_with_both_versions(store_url, store):
    set_version(store, SCHEMA_VERSION + 7)
    store.close()
    with pytest.raises(
        SaescopeError,
        match=rf"schema version {SCHEMA_VERSION + 7}, newer than this saescope's \({SCHEMA_VERSION}\)",
    ) as err:
        open_store(store_url)
    assert ("features.db" if "://" not in store_url else "127.0.0.1") in str(err.value)
    assert PASSWORD not in str(err.value)


def test_unknown_old_schema_is_refused(store_url, store):
    set_version(store, 0)
    store.close()
    with pytest.raises(
        SaescopeError, match="schema version 0, which this saescope .* cannot migrate"
    ):
        open_store(store_url)


def downgrade(store, version: int) -> None:
    """Turn a current store into the layout of an older schema version, as that version wrote it."""
    with store.engine.begin() as conn:
        if version <= 3:  # v3 kept one explanation per feature, in features.explanation only
            conn.exec_driver_sql("DROP TABLE explanation_scores")
            conn.exec_driver_sql("DROP TABLE explanations")
            conn.exec_driver_sql("ALTER TABLE features DROP COLUMN label")
        if (
            version <= 2
        ):  # v2 kept each feature's arrays in features.data, examples keyed without interval
            if store.backend == "postgresql":
                conn.exec_driver_sql("ALTER TABLE examples DROP CONSTRAINT examples_pkey")
                conn.exec_driver_sql(
                    "ALTER TABLE examples ADD PRIMARY KEY (sae_id, feature, kind, rank)"
                )
            else:
                conn.exec_driver_sql("CREATE TABLE examples_v2 AS SELECT * FROM examples")
                conn.exec_driver_sql("DROP TABLE examples")
                conn.exec_driver_sql("ALTER TABLE examples_v2 RENAME TO examples")
            blob = "BLOB" if store.backend == "sqlite" else "BYTEA"
            conn.exec_driver_sql(f"ALTER TABLE features ADD COLUMN data {blob}")
            conn.exec_driver_sql(
                "UPDATE features SET data = (SELECT a.data FROM feature_arrays a "
                "WHERE a.sae_id = features.sae_id AND a.feature = features.feature)"
            )
            conn.exec_driver_sql("DROP TABLE feature_arrays")
        if version <= 1:  # v1 had no search index
            if store.backend == "sqlite":
                for trigger in ("search_docs_ai", "search_docs_ad", "search_docs_au"):
                    conn.exec_driver_sql(f"DROP TRIGGER {trigger}")
                conn.exec_driver_sql("DROP TABLE search_fts")
            conn.exec_driver_sql("DROP TABLE search_docs")
    set_version(store, version)


@pytest.mark.parametrize("old_version", [1, 2])
def test_older_store_is_migrated_with_everything_kept(store_url, store, old_version):
    """v1 had no search index, v2 kept feature arrays inline: opening either migrates it
    to the current layout, keeping every field, explanations included, and search works."""
    analysis = make_analysis()
    store.write_analysis(analysis)
    store.set_explanation(analysis.sae_id, 10, "Capital cities")
    downgrade(store, old_version)
    store.close()
    with open_store(store_url) as migrated:
        with migrated.engine.connect() as conn:
            assert conn.exec_driver_sql(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).scalar() == str(SCHEMA_VERSION)
        assert_same_analysis(migrated.load_analysis(analysis.sae_id), analysis)
        assert migrated.feature(analysis.sae_id, 10)["explanation"] == "Capital cities"
        assert [(r["feature"], r["field"]) for r in migrated.search("capital")] == [
            (10, "explanation")
        ]
        assert migrated.search("paris")[0]["feature"] == 3
        migrated.write_analysis(make_analysis(seed=4))  # and it takes new writes


def test_sqlite_file_that_is_not_a_store(tmp_path):
    text_file = tmp_path / "notes.db"
    text_file.write_text("not a database at all " * 100)
    with pytest.raises(SaescopeError, match=r"notes.db: file is not a database"):
        open_store(text_file)
    other = tmp_path / "other.db"
    import sqlite3

    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    with pytest.raises(
        SaescopeError, match=r"other.db is not a saescope feature store: it holds tables \(users\)"
    ):
        open_store(other)
    assert text_file.read_text().startswith("not a database")  # nothing written into it


def test_missing_store_is_not_created_when_reading(tmp_path):
    with pytest.raises(SaescopeError, match="there is no feature store at .*nowhere.db"):
        open_store(tmp_path / "nowhere.db", create=False)
    assert not (tmp_path / "nowhere.db").exists()
    run_dir = tmp_path / "runs" / "demo"
    run_dir.mkdir(parents=True)
    with open_store(run_dir) as store:  # a run directory means its features.db
        assert store.where == str(run_dir / "features.db")


def test_unreachable_postgres_url_fails_fast_and_hides_the_password():
    url = f"postgresql://someone:{PASSWORD}@127.0.0.1:{free_port()}/features"
    start = time.monotonic()
    with pytest.raises(SaescopeError) as err:
        open_store(url)
    assert time.monotonic() - start < 10
    message = str(err.value)
    assert "postgresql://someone:***@127.0.0.1" in message and PASSWORD not in message
    assert "refused" in message.lower()


def test_wrong_password_names_the_cause(postgres_server):
    url = postgres_server.url().replace(PASSWORD, "wrong-password")
    with pytest.raises(SaescopeError, match="password authentication failed") as err:
        open_store(url)
    assert "wrong-password" not in str(err.value)


def test_unsupported_url_scheme():
    with pytest.raises(SaescopeError, match="backend 'mysql' is not supported"):
        open_store("mysql://u:p@localhost/db")


def test_bad_analysis_is_refused_before_writing(store):
    good = make_analysis()
    store.write_analysis(good)
    bad = make_analysis(seed=3)
    bad.features.max_act = bad.features.max_act.copy()
    bad.features.max_act[5] = np.nan
    with pytest.raises(SaescopeError, match=r"FeatureTables.max_act .* not finite for feature 5"):
        store.write_analysis(bad)
    short = make_analysis(seed=3)
    short.features.logit_top_ids = short.features.logit_top_ids[:10]
    with pytest.raises(
        SaescopeError, match=r"FeatureTables.logit_top_ids .*: 10 rows; expected d_sae=64"
    ):
        store.write_analysis(short)
    wrong_kind = make_analysis(seed=3)
    wrong_kind.examples[0].kind = "best"
    with pytest.raises(SaescopeError, match="kind 'best'; expected one of top, quantile, inactive"):
        store.write_analysis(wrong_kind)
    assert_same_analysis(store.load_analysis(good.sae_id), good)


def test_killed_writer_leaves_the_previous_version_intact(store_url, store):
    """Kill -9 a process in the middle of rewriting an SAE: readers still get the old
    version (and the other SAE), and the next write goes through."""
    old = make_analysis(seed=0)
    other = make_analysis("another-sae", seed=2)
    store.write_analysis(old)
    store.write_analysis(other)
    store.set_explanation(old.sae_id, 3, "Paris")
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER.format(repo=str(REPO), url=store_url)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = writer.stdout.readline()
        assert line.startswith("64/"), (
            line,
            writer.stderr.read() if writer.poll() is not None else "",
        )
        # mid-write: the old version is what everyone else reads
        assert_same_analysis(store.load_analysis(old.sae_id), old)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    with open_store(store_url) as reopened:
        assert_same_analysis(reopened.load_analysis(old.sae_id), old)
        assert_same_analysis(reopened.load_analysis(other.sae_id), other)
        assert reopened.search("paris")[0]["field"] == "explanation"
        new = make_analysis(seed=7)
        reopened.write_analysis(new)
        assert_same_analysis(reopened.load_analysis(new.sae_id), new)
        assert reopened.feature(new.sae_id, 3)["explanation"] == "Paris"


def test_connection_lost_mid_write_is_one_clear_error(postgres_server):
    """The server drops the writer's connection half-way (as a restart or a network cut
    would): a SaescopeError, not a traceback, and the previous version stays."""
    import psycopg

    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute("CREATE DATABASE dropped_writer")
    url = postgres_server.url("dropped_writer")
    old = make_analysis(seed=0)
    with open_store(url) as store:
        store.write_analysis(old)

        def cut_connection(done: int, total: int) -> None:
            with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = 'dropped_writer' AND state = 'idle in transaction'"
                )

        with pytest.raises(
            SaescopeError, match=r"writing SAE .* failed, and none of it was kept: .*terminat"
        ):
            store.write_analysis(make_analysis(seed=9), on_progress=cut_connection)
        assert_same_analysis(store.load_analysis(old.sae_id), old)
