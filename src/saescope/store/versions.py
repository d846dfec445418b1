"""Schema versions: create a new store, check an existing one, migrate an older one.

The version lives in the `meta` table. Every migration runs in one transaction, so an
interrupted migration leaves the store at its old version, still readable and migratable.
Creating and migrating take a lock first (SQLite: the write lock; PostgreSQL: an advisory
lock), so two processes opening one old store migrate it once, the second waiting.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, inspect, literal, select, true

from saescope.errors import SaescopeError
from saescope.store import schema, search_text

EMPTY_TABLES = {"sqlite_sequence"}


def stored_version(conn: Connection) -> int | None:
    """The store's schema version; None for an empty database."""
    names = set(inspect(conn).get_table_names()) - EMPTY_TABLES
    if not names:
        return None
    if "meta" not in names:
        raise NotAStore(
            f"holds tables ({', '.join(sorted(names)[:5])}) but no saescope `meta` table"
        )
    value = conn.execute(
        select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")
    ).scalar()
    if value is None:
        raise NotAStore("has a `meta` table without a schema_version")
    return int(value)


class NotAStore(Exception):
    """The database is not a saescope feature store (the caller names it in the message)."""


def create(conn: Connection) -> None:
    schema.metadata.create_all(conn)
    create_search_index(conn)
    conn.execute(
        schema.meta.insert(), [{"key": "schema_version", "value": str(schema.SCHEMA_VERSION)}]
    )


def create_search_index(conn: Connection) -> None:
    ddl = schema.SQLITE_SEARCH_DDL if conn.dialect.name == "sqlite" else schema.POSTGRES_SEARCH_DDL
    for statement in ddl:
        conn.exec_driver_sql(statement)


# Any fixed 64-bit key: it names the lock that every saescope migrating this database takes.
POSTGRES_SCHEMA_LOCK = 0x5AE5C09E


@contextmanager
def schema_lock(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the store's schema lock: a second caller waits for the first."""
    if engine.dialect.name == "sqlite":
        with engine.connect().execution_options(sqlite_immediate=True) as conn, conn.begin():
            yield conn
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({POSTGRES_SCHEMA_LOCK})")
            yield conn


def check_upgradable(version: int, where: str) -> None:
    """Refuse a store this saescope cannot bring to its schema, naming both versions."""
    if version > schema.SCHEMA_VERSION:
        raise SaescopeError(
            f"the feature store {where} has schema version {version}, newer than this saescope's "
            f"({schema.SCHEMA_VERSION}); upgrade saescope to read it."
        )
    if version not in MIGRATIONS and version != schema.SCHEMA_VERSION:
        raise SaescopeError(
            f"the feature store {where} has schema version {version}, which this saescope "
            f"(schema {schema.SCHEMA_VERSION}) cannot migrate; write the analysis to a new store."
        )


def upgrade(conn: Connection, version: int, where: str) -> None:
    """Bring a store at `version` to the current schema, or say why it cannot be."""
    check_upgradable(version, where)
    while version < schema.SCHEMA_VERSION:
        MIGRATIONS[version](conn)
        version += 1
        conn.execute(
            schema.meta.update()
            .where(schema.meta.c.key == "schema_version")
            .values(value=str(version))
        )


def _v1_to_v2(conn: Connection) -> None:
    """v2 adds search: build search_docs from the stored top examples and explanations."""
    schema.search_docs.create(conn)
    create_search_index(conn)
    for sae in conn.execute(
        select(schema.saes.c.sae_id, schema.saes.c.d_sae, schema.saes.c.vocab_hash)
    ).all():
        vocab = None
        if sae.vocab_hash is not None:
            vocab = json.loads(
                conn.execute(
                    select(schema.vocabs.c.tokens).where(
                        schema.vocabs.c.vocab_hash == sae.vocab_hash
                    )
                ).scalar_one()
            )
        explanations = dict(
            conn.execute(
                select(schema.features.c.feature, schema.features.c.explanation).where(
                    schema.features.c.sae_id == sae.sae_id,
                    schema.features.c.explanation.is_not(None),
                )
            ).all()
        )
        docs = list(search_text.search_doc_rows(conn, sae.sae_id, sae.d_sae, explanations, vocab))
        if docs:
            conn.execute(schema.search_docs.insert(), docs)


def _v2_to_v3(conn: Connection) -> None:
    """v3 moves the per-feature blobs out of `features`, so that sorting, filtering and
    counting features read small rows, and adds `interval` to the examples' key."""
    schema.feature_arrays.create(conn)
    conn.exec_driver_sql(
        "INSERT INTO feature_arrays (sae_id, feature, data) SELECT sae_id, feature, data FROM features"
    )
    conn.exec_driver_sql("ALTER TABLE features DROP COLUMN data")
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ALTER TABLE examples DROP CONSTRAINT examples_pkey")
        conn.exec_driver_sql(
            'ALTER TABLE examples ADD PRIMARY KEY (sae_id, feature, kind, "interval", rank)'
        )
    else:  # SQLite cannot change a primary key: copy into a new table
        conn.exec_driver_sql("ALTER TABLE examples RENAME TO examples_v2")
        schema.examples.create(conn)
        columns = ", ".join(f'"{c.name}"' for c in schema.examples.columns)
        conn.exec_driver_sql(f"INSERT INTO examples ({columns}) SELECT {columns} FROM examples_v2")
        conn.exec_driver_sql("DROP TABLE examples_v2")


def _v3_to_v4(conn: Connection) -> None:
    """v4 keeps explanations (with their explainer, cost and scores) in tables of their own,
    and a short label per feature: every explanation stored so far becomes a current,
    hand-set ("manual") explanation."""
    schema.explanations.create(conn)
    schema.explanation_scores.create(conn)
    conn.exec_driver_sql("ALTER TABLE features ADD COLUMN label TEXT")
    migrated_at = datetime.now(UTC).isoformat(timespec="microseconds")
    conn.execute(
        schema.explanations.insert().from_select(
            [
                "sae_id",
                "feature",
                "kind",
                "text",
                "status",
                "backend",
                "model",
                "prompt_format",
                "prompt_version",
                "created_at",
                "prompt_tokens",
                "completion_tokens",
                "is_current",
                "data",
            ],
            select(
                schema.features.c.sae_id,
                schema.features.c.feature,
                literal("explanation"),
                schema.features.c.explanation,
                literal("ok"),
                literal("manual"),
                literal(""),
                literal(""),
                literal(0),
                literal(migrated_at),
                literal(0),
                literal(0),
                true(),
                literal("{}"),
            )
            .where(schema.features.c.explanation.is_not(None), schema.features.c.explanation != "")
            .order_by(schema.features.c.sae_id, schema.features.c.feature),
        )
    )


MIGRATIONS = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4}
