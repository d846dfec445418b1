"""Turn a store argument (a run directory, a store file or a URL) into a SQLAlchemy engine,
with clear errors for ones that fail.

A path (or `sqlite:///path`) is a SQLite file, a run directory means its features.db;
`postgresql://...` is a PostgreSQL database reached through psycopg 3 (the `postgres` extra).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from saescope.errors import SaescopeError
from saescope.runs.layout import STORE_FILE, is_run_dir, store_path

CONNECT_TIMEOUT_S = 5
SQLITE_BUSY_TIMEOUT_MS = 30_000
ACCEPTED = f"a run directory holding {STORE_FILE}, a store file or a postgresql:// URL"


@dataclass(frozen=True)
class StoreArgument:
    """A store argument resolved: the store file or the URL, and the run directory around it."""

    url: str | None  # a database URL as given (postgresql://..., sqlite:///...); None for a path
    path: Path | None  # the store file (a run directory's features.db); None for a URL
    run_dir: Path | None  # the run directory given, or the one holding the store file

    @property
    def where(self) -> str:
        """What open_store takes."""
        return self.url if self.url is not None else str(self.path)


def is_url(path_or_url: str | Path) -> bool:
    return "://" in str(path_or_url)


def resolve_store_argument(
    path_or_url: str | Path, must_exist: bool = False, field: str = "store"
) -> StoreArgument:
    """A run directory (its features.db), a store file or a URL; with `must_exist`, a path that
    holds no store is refused with a message naming `field` (the argument's name)."""
    if is_url(path_or_url):
        return StoreArgument(url=str(path_or_url), path=None, run_dir=None)
    given = Path(path_or_url).expanduser()
    if given.is_dir():
        path, run_dir = store_path(given), given
    else:
        path = given
        run_dir = given.parent if given.name == STORE_FILE and is_run_dir(given.parent) else None
    if must_exist and not path.is_file():
        reason = (
            f"the run directory {given} has no {STORE_FILE} yet; run the analysis first "
            "(saescope analyze), or give"
            if given.is_dir()
            else f"{given} does not exist; expected"
        )
        raise SaescopeError(f"{field}: no feature store there: {reason} {ACCEPTED}.")
    return StoreArgument(url=None, path=path, run_dir=run_dir)


def store_url(path_or_url: str | Path) -> URL:
    """The SQLAlchemy URL for a store argument; PostgreSQL URLs get the psycopg 3 driver."""
    if not is_url(path_or_url):
        where = resolve_store_argument(path_or_url).where
        return URL.create("sqlite", database=str(Path(where).resolve()))
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
    def _on_connect(dbapi_connection, _record):
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
    def _on_begin(connection):
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
