"""Fixtures: every storage test runs on SQLite (a temp file) and on PostgreSQL.

PostgreSQL tests get a fresh database each (``pop3watch_t_<random>``, created through the
``test`` database and dropped with ``FORCE`` afterwards), so they are isolated and can run
again and again. When the server is unreachable they are skipped, or fail when ``CI`` is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pop3watch.storage import Storage

PG_ADMIN_DSN = os.environ.get("POP3WATCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

_pg_checked: list[str | None] = []  # [None] reachable, [reason] not, [] not checked yet


def _pg_unreachable() -> str | None:
    if not _pg_checked:
        try:
            with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3):
                pass
        except psycopg.Error as exc:
            _pg_checked.append(f"PostgreSQL at {PG_ADMIN_DSN} is unreachable: {exc}")
        else:
            _pg_checked.append(None)
    return _pg_checked[0]


def require_postgres() -> None:
    reason = _pg_unreachable()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@dataclass
class PgDatabase:
    name: str
    url: str  # asyncpg URL of the fresh database

    def drop(self) -> None:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )


def create_pg_database() -> PgDatabase:
    require_postgres()
    name = f"pop3watch_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return PgDatabase(name, f"{base}/{name}")


@pytest.fixture
def pg_database() -> Iterator[PgDatabase]:
    db = create_pg_database()
    try:
        yield db
    finally:
        db.drop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database (SQLite: a file in a directory that does not exist yet)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'pop3watch.db'}"
        return
    db = create_pg_database()
    try:
        yield db.url
    finally:
        db.drop()


@pytest.fixture
async def storage(db_url: str) -> AsyncIterator[Storage]:
    store = await Storage.connect(db_url)
    try:
        yield store
    finally:
        await store.close()
