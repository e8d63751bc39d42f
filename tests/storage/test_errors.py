"""Every database failure surfaces as StorageError, promptly and without secrets."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pop3watch.errors import StorageError
from pop3watch.storage import Storage, StoredResult, WriteBatch, normalize_url
from tests.storage.conftest import PgDatabase
from tests.storage.helpers import make_monitors, ts


def one_result(monitor_id: int) -> WriteBatch:
    return WriteBatch(
        [StoredResult(monitor_id=monitor_id, started_at=ts("2025-03-01 10:00"), status="up")],
        [],
        [],
    )


@pytest.mark.parametrize("driver", ["postgresql+asyncpg", "postgresql+psycopg", "postgresql"])
async def test_closed_port_is_a_storage_error_without_the_password(driver: str) -> None:
    started = time.monotonic()
    with pytest.raises(StorageError) as info:
        await Storage.connect(f"{driver}://u:hunter2@127.0.0.1:1/x")
    assert time.monotonic() - started < 10
    error = info.value
    assert error.code == "storage_unavailable"
    assert "hunter2" not in str(error) and "hunter2" not in repr(error)
    assert "127.0.0.1:1" in str(error) and "***" in str(error)


async def test_safe_url_hides_the_password() -> None:
    assert "hunter2" not in normalize_url("postgresql://u:hunter2@h/x").render_as_string()


@pytest.mark.postgres
async def test_dropped_postgres_database_is_a_storage_error(pg_database: PgDatabase) -> None:
    store = await Storage.connect(pg_database.url)
    try:
        a = (await make_monitors(store, "a"))["a"]
        pg_database.drop()
        with pytest.raises(StorageError, match="does not exist"):
            await store.ping()
        with pytest.raises(StorageError):
            await store.write_batch(one_result(a))
    finally:
        await store.close()


async def test_sqlite_directory_deleted_under_a_live_storage(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    store = await Storage.connect(f"sqlite:///{folder / 'p.db'}")
    try:
        a = (await make_monitors(store, "a"))["a"]
        shutil.rmtree(folder)
        with pytest.raises(StorageError, match="deleted"):
            await store.write_batch(one_result(a))
        with pytest.raises(StorageError):
            await store.ping()
        assert not folder.exists()  # we never recreate an empty database behind the scenes
    finally:
        await store.close()


async def test_sqlite_file_replaced_under_a_live_storage(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    store = await Storage.connect(f"sqlite:///{path}")
    try:
        await make_monitors(store, "a")
        for stale in tmp_path.glob("p.db*"):  # the file and its -wal and -shm
            stale.unlink()
        path.write_bytes(b"this is not a database" * 100)
        with pytest.raises(StorageError, match="replaced"):
            await store.list_monitors()
        with pytest.raises(StorageError, match="not a database"):
            await store.list_monitors()
    finally:
        await store.close()


async def test_sqlite_path_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="opening the database"):
        await Storage.connect(f"sqlite:///{blocker / 'sub' / 'p.db'}")


@contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Make ``paths`` unwritable, even for root (which ignores permission bits)."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in paths}
        for p in paths:
            p.chmod(0o500 if p.is_dir() else 0o400)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: cannot make a path read-only")
    done = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"chattr +i failed: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)


async def test_sqlite_in_a_read_only_directory(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    with read_only(folder), pytest.raises(StorageError, match="unable to open"):
        await Storage.connect(f"sqlite:///{folder / 'p.db'}")


async def test_sqlite_database_made_read_only(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    store = await Storage.connect(f"sqlite:///{folder / 'p.db'}")
    await store.close()  # checkpoints: only p.db is left
    # connecting wants to write (WAL files, the migration transaction)
    with read_only(folder, *folder.iterdir()), pytest.raises(StorageError):
        await Storage.connect(f"sqlite:///{folder / 'p.db'}")


async def test_locked_sqlite_database_fails_fast_instead_of_hanging(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    store = await Storage.connect(f"sqlite:///{path}")
    try:
        a = (await make_monitors(store, "a"))["a"]
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")
            started = time.monotonic()
            with pytest.raises(StorageError, match="locked"):
                await store.write_batch(one_result(a))
            assert 1.5 < time.monotonic() - started < 6  # busy_timeout is 2 s
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert (await store.write_batch(one_result(a))).results_written == 1
    finally:
        await store.close()


async def test_a_start_waiting_for_another_writer_stops_at_once_when_cancelled(
    tmp_path: Path,
) -> None:
    """Starting waits (up to a minute) while another process holds SQLite's write lock,
    as one migrating would; a Ctrl-C meanwhile must not wait that minute out inside
    SQLite's busy handler."""
    path = tmp_path / "p.db"
    await (await Storage.connect(f"sqlite:///{path}")).close()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        starting = asyncio.create_task(Storage.connect(f"sqlite:///{path}"))
        await asyncio.sleep(0.8)
        assert not starting.done()  # waiting for the lock, not failing
        cancelled_at = time.monotonic()
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting
        assert time.monotonic() - cancelled_at < 3  # one short attempt, not the minute

        waiting = asyncio.create_task(Storage.connect(f"sqlite:///{path}"))
        await asyncio.sleep(0.8)
        other.execute("ROLLBACK")  # the other process is done: the wait ends in success
        await (await waiting).close()
    finally:
        other.close()


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite"),
        ("sqlite+pysqlite:///x.db", "sqlite+aiosqlite"),
        ("postgresql://h/db", "postgresql+asyncpg"),
        ("postgres://h/db", "postgresql+asyncpg"),
        ("postgresql+psycopg2://h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://h/db", "postgresql+psycopg"),
    ],
)
def test_plain_urls_map_to_async_drivers(url: str, driver: str) -> None:
    assert normalize_url(url).drivername == driver


@pytest.mark.parametrize("url", ["mysql://u:hunter2@h/db", "sqlite://", "sqlite:///:memory:", "::"])
async def test_unsupported_urls_are_value_errors_without_the_password(url: str) -> None:
    with pytest.raises(ValueError, match=r"URL|unsupported|in-memory") as info:
        await Storage.connect(url)
    assert "hunter2" not in str(info.value)
