"""Migrations build the schema the code is written against, on both databases."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from pop3watch.errors import StorageError
from pop3watch.storage import Storage, normalize_url
from pop3watch.storage.engine import SQLITE_BUSY_TIMEOUT_MS
from pop3watch.storage.migrate import head_revision, schema_differences
from tests.storage.helpers import make_monitors


async def _inspect(url: str) -> tuple[list[object], str | None, set[str]]:
    engine = create_async_engine(normalize_url(url))
    try:
        async with engine.connect() as conn:
            diffs = await conn.run_sync(schema_differences)
            revision = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
            tables = set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    return diffs, revision, tables


async def test_connect_migrates_an_empty_database_to_head(db_url: str) -> None:
    async with await Storage.connect(db_url) as store:
        await store.ping()
    diffs, revision, tables = await _inspect(db_url)
    assert revision == head_revision()
    assert {
        "monitors",
        "monitor_status",
        "results",
        "transitions",
        "rollups_hourly",
        "rollups_daily",
        "meta",
    } <= tables
    assert diffs == []


async def test_reconnecting_is_idempotent_and_keeps_data(db_url: str) -> None:
    async with await Storage.connect(db_url) as store:
        ids = await make_monitors(store, "a")
    async with await Storage.connect(db_url) as again:
        assert [m.id for m in await again.list_monitors()] == [ids["a"]]
    async with await Storage.connect(db_url, migrate=False) as plain:
        await plain.ping()
    diffs, revision, _ = await _inspect(db_url)
    assert (diffs, revision) == ([], head_revision())


async def test_two_processes_migrating_at_once_both_succeed(db_url: str) -> None:
    stores = await asyncio.gather(Storage.connect(db_url), Storage.connect(db_url))
    for store in stores:
        await store.ping()
        await store.close()


@pytest.mark.parametrize("journal", ["wal", "delete"])
async def test_setting_up_waits_for_another_process_holding_the_sqlite_lock(
    tmp_path: Path, journal: str
) -> None:
    """A second process starting while the first still sets the database up (which takes
    seconds on a busy machine) waits for it instead of failing after the service's short
    lock wait: at ``BEGIN IMMEDIATE`` once the file is in WAL, and at the switch to WAL
    while it is not yet."""
    path = tmp_path / "p.db"
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute(f"PRAGMA journal_mode = {journal}")
    blocker.execute("BEGIN IMMEDIATE")  # the other process, mid-migration
    blocker.execute("CREATE TABLE other_process (x)")
    hold_s = SQLITE_BUSY_TIMEOUT_MS / 1000 + 1.0

    def release_later() -> None:
        time.sleep(hold_s)
        blocker.execute("COMMIT")

    releaser = threading.Thread(target=release_later)
    started = time.monotonic()
    releaser.start()
    try:
        async with await Storage.connect(f"sqlite:///{path}") as store:
            await store.ping()
        assert time.monotonic() - started >= hold_s  # it really waited for the lock
    finally:
        releaser.join()
        blocker.close()
    with closing(sqlite3.connect(path)) as check:
        assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_without_migrations_an_empty_database_is_refused(db_url: str) -> None:
    with pytest.raises(StorageError, match=r"no pop3watch (database at|data yet)"):
        await Storage.connect(db_url, migrate=False)


async def test_a_reader_creates_nothing_for_a_missing_database(tmp_path: Path) -> None:
    """`pop3watch status --data-dir typo` must not leave a directory and a database."""
    path = tmp_path / "typo" / "pop3watch.db"
    with pytest.raises(StorageError, match=r"no pop3watch database at .*check --data-dir"):
        await Storage.connect(f"sqlite:///{path}", migrate=False)
    assert not path.parent.exists()


async def test_a_reader_tells_an_unknown_schema_revision_from_an_old_one(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    url = f"sqlite:///{path}"
    await (await Storage.connect(url)).close()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
        conn.commit()
    with pytest.raises(StorageError, match=r"does not know .*a newer pop3watch wrote it"):
        await Storage.connect(url, migrate=False)


async def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'p.db'}"
    async with await Storage.connect(url) as store:
        assert store.dialect == "sqlite"
        engine = store._db.engine
        async with engine.connect() as conn:
            pragmas = {
                name: await conn.scalar(sa.text(f"PRAGMA {name}"))
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 1,
        "busy_timeout": 2000,
        "foreign_keys": 1,
    }
    assert (tmp_path / "nested" / "dir" / "p.db").exists()


async def test_relative_sqlite_path_is_pinned_at_connect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with await Storage.connect("sqlite:///rel/p.db") as store:
        assert store.safe_url == f"sqlite+aiosqlite:///{tmp_path / 'rel' / 'p.db'}"
        await make_monitors(store, "a")
        monkeypatch.chdir("/")
        await store.close()  # new connections after the chdir find the same file
        assert [m.name for m in await store.list_monitors()] == ["a"]
    assert not Path("/rel").exists()
