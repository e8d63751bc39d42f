"""Alembic, configured from code: upgrade to head and compare the schema with ``metadata``.

Job: keep the database schema at the version this code expects. Rule: callers pass a
synchronous ``Connection`` (use ``AsyncConnection.run_sync``) that is already inside a
transaction; nothing here commits. The migration scripts ship inside the package, so no
``alembic.ini`` and no working directory are needed.

Two processes starting at once must not both create the tables: on PostgreSQL the upgrade
holds a transaction-scoped advisory lock; on SQLite the caller's ``BEGIN IMMEDIATE`` already
serialises writers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from pop3watch.storage.engine import SETUP_LOCK_WAIT_S, sqlite_pragma
from pop3watch.storage.schema import metadata

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: Arbitrary constant naming pop3watch's migration lock among PostgreSQL advisory locks.
_PG_MIGRATION_LOCK = 0x706F7033  # "pop3"


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic ``Config`` pointing at the packaged scripts (and at ``connection``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships a revision
        raise RuntimeError("no migration scripts found")
    return head


def known_revisions() -> frozenset[str]:
    """Every revision the package ships (a database at one of them can be upgraded)."""
    scripts = ScriptDirectory.from_config(alembic_config())
    return frozenset(rev.revision for rev in scripts.walk_revisions())


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate the database on ``connection`` to ``revision`` (a no-op when already there).

    On SQLite, run it between ``sqlite_foreign_keys(conn, False)`` and ``(conn, True)``
    (outside the transaction): batch migrations rebuild a table by copying it and dropping
    the old one, and with foreign keys on, dropping ``monitors`` would cascade-delete every
    result. The keys are checked before the transaction commits instead.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SET LOCAL lock_timeout = '{SETUP_LOCK_WAIT_S}s'"))
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    if current_revision(connection) == head_revision() and revision == "head":
        return
    command.upgrade(alembic_config(connection), revision)
    if connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"a migration left {len(broken)} broken foreign keys: {broken[:5]}")


def sqlite_busy_timeout(connection: Connection, milliseconds: int) -> None:
    """How long SQLite waits for a lock on ``connection`` (for the migration's
    ``BEGIN IMMEDIATE``: ``SETUP_LOCK_WAIT_S``, then back to the service's value)."""
    sqlite_pragma(connection, f"busy_timeout = {int(milliseconds)}")


def sqlite_foreign_keys(connection: Connection, enabled: bool) -> None:
    """Switch SQLite foreign keys on ``connection``, which must not be in a transaction.

    Goes through the DBAPI cursor: a ``Connection.execute`` would begin a transaction
    first, and inside one SQLite silently ignores this pragma.
    """
    if connection.in_transaction():
        raise RuntimeError("PRAGMA foreign_keys has no effect inside a transaction")
    sqlite_pragma(connection, f"foreign_keys = {'ON' if enabled else 'OFF'}")


def schema_differences(connection: Connection) -> list[Any]:
    """What autogenerate would change to make the database match ``metadata`` ([] = same)."""
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))
