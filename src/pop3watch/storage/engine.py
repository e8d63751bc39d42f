"""Database URLs and the async engine, with SQLite tuned for a long-running service.

Job: turn the URL a user typed into an async engine that behaves the same way on every
connection. Rule: this is the only place that knows driver names and connection options;
the rest of ``storage`` only asks for ``dialect`` and a ``write`` view of the engine.

SQLite gets WAL (readers never block the writer), ``synchronous=NORMAL`` (durable at every
checkpoint, fast commits), a short ``busy_timeout`` (a locked database becomes an error in
about two seconds instead of a hang; the engine buffers and retries) and foreign keys.
Python's ``sqlite3`` would start transactions lazily and only for DML; we switch that off and
emit ``BEGIN`` ourselves, ``BEGIN IMMEDIATE`` for writers, so a compare-and-swap never has
to upgrade a read lock (which SQLite refuses immediately with "database is locked").
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pop3watch.storage.stats import NearestRankAggregate

T = TypeVar("T")

#: Milliseconds SQLite waits for a lock before giving up with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 2000
#: Seconds a process setting up the database (journal mode, migrations) waits for another
#: process doing the same: a whole schema upgrade on a busy machine takes seconds, and a
#: second process starting meanwhile must wait for it, not fail.
SETUP_LOCK_WAIT_S = 60
#: Seconds to wait for a PostgreSQL connection before giving up.
PG_CONNECT_TIMEOUT_S = 5
#: PostgreSQL waits at most this long for a row or table lock (a stuck writer elsewhere).
PG_LOCK_TIMEOUT = "10s"

#: Execution option read by the SQLite ``begin`` hook: the kind of ``BEGIN`` to emit.
BEGIN_OPTION = "pop3watch_sqlite_begin"

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+psycopg",
    "postgresql+psycopg_async": "postgresql+psycopg",
    "postgresql+psycopg2": "postgresql+psycopg",
}

DEFAULT_URL = "sqlite+aiosqlite:///data/pop3watch.db"

#: Name of the nearest-rank p95 aggregate on SQLite (``percentile_disc`` on PostgreSQL).
SQLITE_P95 = "pop3watch_p95"


class _SQLiteConnection(sqlite3.Connection):
    """``sqlite3.Connection`` with our aggregate; built in aiosqlite's own thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # typeshed types aggregates as int -> int; ours is float -> float | None.
        self.create_aggregate(SQLITE_P95, 1, NearestRankAggregate)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Database:
    """An engine plus what the repository needs to know about it."""

    engine: AsyncEngine
    #: The same pool, but transactions begin as writers (``BEGIN IMMEDIATE`` on SQLite).
    write_engine: AsyncEngine
    url: URL
    dialect: str  # "sqlite" | "postgresql"
    #: SQLite only: the absolute path of the database file.
    sqlite_path: Path | None

    @property
    def safe_url(self) -> str:
        return masked_url(self.url)


_MASK = "***"
# Query parameters the drivers read a password from (libpq's and asyncpg's spellings).
_PASSWORD_PARAMETERS = frozenset({"password", "passwd", "pwd", "sslpassword"})


def url_password(url: URL) -> str | None:
    """The password of ``url``, in its user part or a ``?password=`` parameter."""
    if url.password is not None:
        return str(url.password)
    for key, value in url.query.items():
        if key.lower() in _PASSWORD_PARAMETERS:
            return value if isinstance(value, str) else ",".join(value)
    return None


def masked_url(url: str | URL) -> str:
    """``url`` for logs and messages: a password, in the user part (whatever characters
    it holds) or in the query string, becomes ``***``. Parsed as SQLAlchemy parses it,
    so the mask falls where the driver will read the password; never raises."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return "<a database URL that cannot be parsed>"
    if parsed.host and "@" in parsed.host:
        # "user:pa@ss@host": an unencoded "@" in the password, which the parser splits at
        # the first "@"; whatever comes before the last one may be part of the secret.
        parsed = parsed.set(host=parsed.host.rpartition("@")[2], password=_MASK)
    if any(key.lower() in _PASSWORD_PARAMETERS for key in parsed.query):
        query = {
            key: (_MASK if key.lower() in _PASSWORD_PARAMETERS else value)
            for key, value in parsed.query.items()
        }
        parsed = parsed.set(query=query)
    # The query string is rendered URL-quoted: "***" would read "%2A%2A%2A".
    return parsed.render_as_string(hide_password=True).replace(quote(_MASK, safe=""), _MASK)


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and map plain or sync driver names onto the async drivers.

    Raises ``ValueError`` (without echoing the URL, which may hold a password) when the
    URL cannot be parsed, names another database, or is an in-memory SQLite database
    (each pooled connection would see a different empty database).
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ValueError("the database URL cannot be parsed") from exc
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ValueError(
            f"unsupported database {parsed.drivername!r}: use sqlite:///path or postgresql://..."
        )
    parsed = parsed.set(drivername=driver)
    if driver.startswith("sqlite") and parsed.database in (None, "", ":memory:"):
        raise ValueError("an in-memory SQLite database is not supported; give a file path")
    return parsed


def sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL (``None`` for other databases and URI forms)."""
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    if url.database.startswith("file:"):
        return None
    return Path(url.database)


def create_database(url: str | URL) -> Database:
    """Build the engine; creates the directory of a SQLite file. Opens no connection yet.

    Raises ``ValueError`` for a bad URL and ``OSError`` when the directory cannot be made.
    """
    parsed = normalize_url(url)
    dialect = parsed.get_backend_name()
    path = sqlite_file(parsed)
    kwargs: dict[str, Any] = {}
    if dialect == "sqlite":
        if path is not None:
            path = path.absolute()  # immune to a later chdir of the process
            path.parent.mkdir(parents=True, exist_ok=True)
            parsed = parsed.set(database=str(path))
        kwargs["connect_args"] = {"factory": _SQLiteConnection}
    else:
        kwargs["pool_pre_ping"] = True  # survive a PostgreSQL restart without an error
        kwargs["connect_args"] = _pg_connect_args(parsed)
    engine = create_async_engine(parsed, **kwargs)
    if dialect == "sqlite":
        _install_sqlite_hooks(engine)
    write = engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
    return Database(engine, write, parsed, dialect, path)


def _pg_connect_args(url: URL) -> dict[str, Any]:
    if url.get_driver_name() == "asyncpg":
        return {
            "timeout": PG_CONNECT_TIMEOUT_S,
            "server_settings": {"lock_timeout": PG_LOCK_TIMEOUT},
        }
    return {
        "connect_timeout": PG_CONNECT_TIMEOUT_S,
        "options": f"-c lock_timeout={PG_LOCK_TIMEOUT}",
    }


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (see the module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            # No journal_mode here: WAL belongs to the file, not the connection, and
            # ``ensure_wal`` sets it once when the storage opens, waiting out another
            # process doing the same (SQLite gives that switch no busy wait).
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(BEGIN_OPTION, "DEFERRED")
        if mode not in ("DEFERRED", "IMMEDIATE"):
            raise ValueError(f"unknown SQLite BEGIN mode {mode!r}")
        conn.exec_driver_sql(f"BEGIN {mode}")


def is_locked(exc: BaseException) -> bool:
    """Whether SQLite refused for a lock another connection holds."""
    return "locked" in str(exc) or "busy" in str(exc)


async def while_locked(attempt: Callable[[], Awaitable[T]]) -> T:
    """``attempt()``, again while it fails on a lock another process holds (one setting
    the same SQLite file up, say), for at most ``SETUP_LOCK_WAIT_S``; then its error.
    Each attempt must give up on its own quickly (a short busy timeout): the wait between
    attempts is where a cancellation (Ctrl-C) reaches it, never inside SQLite."""
    deadline = time.monotonic() + SETUP_LOCK_WAIT_S
    delay = 0.01
    while True:
        try:
            return await attempt()
        except (sqlite3.OperationalError, OperationalError) as exc:
            if not is_locked(exc) or time.monotonic() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.25)


async def ensure_wal(engine: AsyncEngine) -> None:
    """Put the SQLite file in WAL mode, waiting (``while_locked``) while another process
    sets it up: switching the journal mode gets no busy wait from SQLite, so two processes
    opening a new database at once would otherwise fail at random."""
    async with engine.connect() as conn:
        await while_locked(lambda: conn.run_sync(_set_wal))


def _set_wal(connection: Connection) -> None:
    """``PRAGMA journal_mode = WAL`` outside any transaction (inside one it cannot work).
    SQLite answers with the mode it kept when another connection keeps the file from
    switching: that is a lock, like the error it gives in other cases."""
    row = sqlite_pragma(connection, "journal_mode = WAL")
    if row is None or str(row[0]).lower() != "wal":
        raise sqlite3.OperationalError("database is locked: cannot switch it to WAL")


def sqlite_pragma(connection: Connection, pragma: str) -> tuple[Any, ...] | None:
    """Run ``PRAGMA <pragma>`` on the connection's own SQLite handle, past SQLAlchemy's
    transaction handling (several pragmas only work outside a transaction); its row."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"PRAGMA {pragma}")
        row: tuple[Any, ...] | None = cursor.fetchone()
        return row
    finally:
        cursor.close()


def default_sqlite_url(data_dir: str | os.PathLike[str]) -> str:
    """The embedded default: ``pop3watch.db`` inside the service's data directory."""
    return f"sqlite+aiosqlite:///{Path(data_dir).absolute() / 'pop3watch.db'}"
