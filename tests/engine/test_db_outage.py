"""The database is locked for a while: the service keeps checking, buffers, says so in its
log, and writes everything once the lock is gone (nothing lost, nothing doubled)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from pop3watch.config import parse_config
from pop3watch.engine.service import Service
from pop3watch.storage import Storage
from tests.fixtures.scripted import Pop3Script, ScriptedFactory


async def test_locked_sqlite_is_survived(
    tmp_path: Path, scripted: ScriptedFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING")
    srv = scripted(Pop3Script())
    db = tmp_path / "pop3watch.db"
    url = f"sqlite+aiosqlite:///{db}"
    monitors = "\n".join(f"  - {{name: m{i}, host: 127.0.0.1, port: {srv.port}}}" for i in range(3))
    config = parse_config(
        f'service: {{database_url: "{url}", flush_interval_s: 0.1, shutdown_grace_s: 5}}\n'
        "defaults: {interval_up: 1, timeout: 1}\n"
        f"monitors:\n{monitors}\n"
    )
    stop = asyncio.Event()
    service = Service(config)
    task = asyncio.create_task(service.run(stop))
    await asyncio.wait_for(service.ready.wait(), 30)
    assert service.engine is not None
    assert service.writer is not None
    await asyncio.sleep(1.5)

    locked = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        conn = sqlite3.connect(db, isolation_level=None, timeout=10)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            locked.set()
            release.wait(30)
            conn.execute("COMMIT")
        finally:
            conn.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert await asyncio.to_thread(locked.wait, 10)
        started_before = service.engine.scheduler.stats.started
        for _ in range(100):  # wait until a write attempt has failed
            if not service.writer.healthy:
                break
            await asyncio.sleep(0.1)
        assert not service.writer.healthy
        await asyncio.sleep(3)
        # Checks went on while the database was locked.
        assert service.engine.scheduler.stats.started >= started_before + 6
        assert service.writer.buffered > 0
    finally:
        release.set()
        await asyncio.to_thread(holder.join, 10)

    for _ in range(200):
        if service.writer.healthy and service.writer.buffered == 0:
            break
        await asyncio.sleep(0.1)
    assert service.writer.healthy
    stop.set()
    await asyncio.wait_for(task, 30)

    assert "database unavailable" in caplog.text
    assert "database is back" in caplog.text
    finished = service.engine.scheduler.stats.finished
    assert service.writer.stats.dropped_results == 0
    storage = await Storage.connect(url, migrate=False)
    try:
        stored = 0
        for monitor in await storage.list_monitors():
            results = await storage.results(monitor.id)
            stored += len(results)
            assert len({r.started_at for r in results}) == len(results)  # nothing doubled
    finally:
        await storage.close()
    assert stored == finished


async def test_unreachable_database_at_start_is_retried_and_stop_still_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("ERROR")
    config = parse_config(
        'service: {database_url: "postgresql+asyncpg://u:hunter2@127.0.0.1:1/x"}\n'
        "monitors:\n  - {name: a, host: 127.0.0.1}\n"
    )
    stop = asyncio.Event()
    task = asyncio.create_task(Service(config).run(stop))
    for _ in range(100):
        if "unavailable" in caplog.text:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert "retrying in" in caplog.text
    assert "hunter2" not in caplog.text


async def test_stop_while_the_database_is_locked_at_start_stops_at_once(tmp_path: Path) -> None:
    """Opening waits up to a minute for another process's write lock (one migrating, say);
    a stop meanwhile (Ctrl-C) ends the service at once instead of after that minute."""
    db = tmp_path / "pop3watch.db"
    url = f"sqlite+aiosqlite:///{db}"
    await (await Storage.connect(url)).close()
    config = parse_config(
        f'service: {{database_url: "{url}"}}\nmonitors:\n  - {{name: a, host: 127.0.0.1}}\n'
    )
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        stop = asyncio.Event()
        service = Service(config)
        task = asyncio.create_task(service.run(stop))
        await asyncio.sleep(1.0)
        assert not task.done() and not service.ready.is_set()  # still waiting for the lock
        stop.set()
        await asyncio.wait_for(task, 5)  # not the minute the lock wait allows
        assert not service.failed
    finally:
        other.close()


@pytest.mark.parametrize("junk", ["not a database", "newer schema"])
async def test_what_waiting_cannot_mend_stops_the_service(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, junk: str
) -> None:
    """A file that is not a database, or a schema from a newer pop3watch, is not an
    outage: the service says so once and stops, failed, instead of retrying forever."""
    caplog.set_level("ERROR")
    db = tmp_path / "pop3watch.db"
    url = f"sqlite+aiosqlite:///{db}"
    if junk == "not a database":
        db.write_bytes(b"this is a text file, not SQLite\n" * 200)
    else:
        await (await Storage.connect(url)).close()
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE alembic_version SET version_num = '9999'")
        conn.close()
    config = parse_config(
        f'service: {{database_url: "{url}"}}\nmonitors:\n  - {{name: a, host: 127.0.0.1}}\n'
    )
    service = Service(config)
    await asyncio.wait_for(service.run(asyncio.Event()), 20)
    assert service.failed
    assert "needs fixing by hand" in caplog.text
    assert "retrying in" not in caplog.text
