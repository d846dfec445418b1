"""Turn a store path or URL into a SQLAlchemy engine, with clear errors for ones that fail.

A path (or `sqlite:///path`) is a SQLite file; `postgresql://...` is a PostgreSQL database
reached through psycopg 3 (the `postgres` extra).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from saescope.errors import SaescopeError

CONNECT_TIMEOUT_S = 5
SQLITE_BUSY_TIMEOUT_MS = 30_000
STORE_FILE = "features.db"  # a run directory's store: runs/<name>/features.db


def is_url(path_or_url: str | Path) -> bool:
    return "://" in str(path_or_url)


def store_url(path_or_url: str | Path) -> URL:
    """The SQLAlchemy URL for a path (a run directory means its features.db) or URL;
    PostgreSQL URLs get the psycopg 3 driver."""
    if not is_url(path_or_url):
        path = Path(path_or_url).expanduser().resolve()
        return URL.create("sqlite", database=str(path / STORE_FILE if path.is_dir() else path))
    try:
        url = make_url(str(path_or_url))
    except ArgumentError as err:
        raise SaescopeError(
            f"store URL {path_or_url!r} cannot be parsed ({err}); expected a "
            "file path or postgresql://USER:PASSWORD@HOST:PORT/DATABASE."
        ) from err
    if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise SaescopeError(
            f"store URL {shown(url)}: backend {url.get_backend_name()!r} is not "
            "supported; expected a file path, sqlite:///PATH or postgresql://..."
        )
    return url


def shown(url: URL) -> str:
    """The URL as it may be printed: without its password (or the driver we picked)."""
    return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)


def make_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    try:
        return create_engine(
            url, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}, pool_pre_ping=True
        )
    except ModuleNotFoundError as err:
        raise SaescopeError(
            f"store URL {shown(url)} needs the PostgreSQL driver psycopg: "
            "pip install 'saescope[postgres]'."
        ) from err


def _sqlite_engine(url: URL) -> Engine:
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # noqa: ANN001
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin, so DDL
        # (migrations) is transactional too (SQLAlchemy's documented pysqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # (WAL mode is set by open_store once the file is known to be a store: a pragma here
        # would change a file it then refuses.)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # noqa: ANN001
        # Writers take the write lock up front (a concurrent writer then waits for it,
        # instead of failing when its read snapshot goes stale); readers never block.
        immediate = connection.get_execution_options().get("sqlite_immediate")
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def connection_error(url: URL, err: SQLAlchemyError) -> SaescopeError:
    """A one-paragraph error naming the store (no password) and the driver's reason."""
    return SaescopeError(f"cannot open the feature store {shown(url)}: {error_reason(err)}")


def error_reason(err: SQLAlchemyError) -> str:
    """The database's own words, on one line (without SQLAlchemy's SQL dump)."""
    cause = str(getattr(err, "orig", None) or err).strip().splitlines()
    return " ".join(line.strip() for line in cause if line.strip()) or type(err).__name__
