"""Take a store written by today's code back to the layout an older schema version wrote, so
that the migrations from each version can be tested on both backends."""

from __future__ import annotations


def set_version(store, version: int) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE meta SET value = '{version}' WHERE key = 'schema_version'")


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
