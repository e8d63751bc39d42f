"""How fast are reports and uptime over a year of rollups? Prints a table per database.

Builds (once; reused while the data set matches) 1,000 monitors with a year of daily and
hourly rollups, the rollup watermark at "now - 50 minutes" and one raw result per monitor
and minute after it, then times ``Storage.report`` and ``Storage.uptime`` as the web and
the engine call them.

    .venv/bin/python bench/report_speed.py                       # SQLite and PostgreSQL
    .venv/bin/python bench/report_speed.py --only sqlite --monitors 200
    .venv/bin/python bench/report_speed.py --pg postgresql://postgres@127.0.0.1:5432/test

The PostgreSQL data set lives in its own database (``pop3watch_bench``), created when
missing. Loading uses bulk paths (executemany on SQLite, COPY on PostgreSQL) through the
storage's own tables; the timed calls are the public API only.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import func, select

from pop3watch.storage import MonitorRecord, Storage, StoredResult, WriteBatch
from pop3watch.storage.schema import monitors, rollups_daily, rollups_hourly

NOW = datetime(2025, 6, 30, 12, 50, tzinfo=UTC)
WATERMARK = NOW.replace(minute=0)
BENCH_DB = "pop3watch_bench"


def rollup_rows(
    ids: list[int], start: datetime, end: datetime, step: timedelta, per_bucket: int
) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(1)
    bucket = start
    while bucket < end:
        for monitor_id in ids:
            failures = rng.choice((0, 0, 0, 0, 1))
            rtt_count = per_bucket - failures
            low = rng.uniform(5, 30)
            yield (
                monitor_id,
                bucket,
                per_bucket,
                failures,
                rng.choice((0, 0, 1)),
                rtt_count,
                low,
                low * 8,
                low * 2.2 * rtt_count,
                low * 5,
            )
        bucket += step


async def load(storage: Storage, n_monitors: int, days: int) -> None:
    names = [f"mon-{i:05d}" for i in range(n_monitors)]
    records = [MonitorRecord(name=n, probe="pop3", enabled=True, config={}) for n in names]
    ids = sorted((await storage.sync_monitors(records)).values())
    first_day = (WATERMARK - timedelta(days=days)).replace(hour=0)
    last_day = WATERMARK.replace(hour=0)
    columns = [c.name for c in rollups_daily.columns]
    for table, step, end, per in (
        (rollups_daily, timedelta(days=1), last_day, 1440),
        (rollups_hourly, timedelta(hours=1), WATERMARK, 60),
    ):
        rows = rollup_rows(ids, first_day, end, step, per)
        started = time.monotonic()
        count = await _bulk_insert(storage, table.name, columns, rows)
        print(f"  loaded {count:>10,} rows into {table.name} in {time.monotonic() - started:.1f}s")
    await storage.rewind_rollups(WATERMARK)
    raw = [
        StoredResult(
            monitor_id=m,
            started_at=WATERMARK + timedelta(minutes=k),
            status="down" if (m + k) % 97 == 0 else "up",
            rtt_ms=10.0 + (m * k) % 50,
        )
        for k in range(50)
        for m in ids
    ]
    for i in range(0, len(raw), 20_000):
        await storage.write_batch(WriteBatch(raw[i : i + 20_000], [], []))


async def _bulk_insert(
    storage: Storage, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]
) -> int:
    db = storage._db  # bench-only: bulk loading below the public API
    total = 0
    async with db.write_engine.begin() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        chunk: list[tuple[Any, ...]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= 100_000:
                total += await _flush(storage.dialect, driver, conn, table, columns, chunk)
                chunk = []
        total += await _flush(storage.dialect, driver, conn, table, columns, chunk)
    return total


async def _flush(
    dialect: str,
    driver: Any,
    conn: Any,
    table: str,
    columns: list[str],
    chunk: list[tuple[Any, ...]],
) -> int:
    if not chunk:
        return 0
    if dialect == "postgresql":
        await driver.copy_records_to_table(table, records=chunk, columns=columns)
    else:  # SQLAlchemy's SQLite DATETIME text format, written straight through the driver
        marks = ", ".join("?" for _ in columns)
        await driver.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
            [(r[0], r[1].strftime("%Y-%m-%d %H:%M:%S.%f"), *r[2:]) for r in chunk],
        )
    return len(chunk)


async def matches(storage: Storage, n_monitors: int) -> bool:
    async with storage._db.engine.connect() as conn:
        have = await conn.scalar(select(func.count()).select_from(monitors))
        hourly = await conn.scalar(select(func.count()).select_from(rollups_hourly))
    return have == n_monitors and bool(hourly)


async def timed(label: str, call: Callable[[], Awaitable[object]], repeat: int) -> list[str]:
    """Wall-clock median/min/max, and the median CPU time of this process (all threads:
    aiosqlite runs SQLite in one), which is what a busy machine does not inflate."""
    await call()  # warm the pool and the page cache
    runs, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        await call()
        runs.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return [
        label,
        *(
            f"{x:8.1f}"
            for x in (statistics.median(runs), min(runs), max(runs), statistics.median(cpu))
        ),
    ]


async def bench(url: str, n_monitors: int, days: int, repeat: int) -> None:
    storage = await Storage.connect(url)
    try:
        if not await matches(storage, n_monitors):
            print(f"building the data set in {storage.safe_url} ...")
            await load(storage, n_monitors, days)
            if storage.dialect == "postgresql":  # what autovacuum would do after a while
                dsn = url.replace("postgresql+asyncpg://", "postgresql://")
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("VACUUM ANALYZE")
        ids = [m.id for m in await storage.list_monitors()]
        month = NOW - timedelta(days=30)
        rows = [
            await timed(
                "report 30 d, all monitors", lambda: storage.report(since=month, until=NOW), repeat
            ),
            await timed(
                "report 30 d, day-aligned",
                lambda: storage.report(
                    since=WATERMARK.replace(hour=0) - timedelta(days=30),
                    until=WATERMARK.replace(hour=0),
                ),
                repeat,
            ),
            await timed(
                "report 365 d, all monitors",
                lambda: storage.report(since=NOW - timedelta(days=365), until=NOW),
                repeat,
            ),
            await timed(
                "report 30 d, 10 monitors",
                lambda: storage.report(since=month, until=NOW, monitor_ids=ids[:10]),
                repeat,
            ),
            await timed(
                "uptime 24 h, all monitors",
                lambda: storage.uptime(ids, since=NOW - timedelta(hours=24), now=NOW),
                repeat,
            ),
            await timed(
                "uptime 30 d, all monitors",
                lambda: storage.uptime(ids, since=month, now=NOW),
                repeat,
            ),
        ]
    finally:
        await storage.close()
    print(
        f"\n{storage.dialect}: {n_monitors:,} monitors, {days} days of rollups, {repeat} runs (ms)"
    )
    print(f"{'call':<30}{'median':>9}{'min':>9}{'max':>9}{'cpu':>9}")
    for label, *numbers in rows:
        print(f"{label:<30}" + "".join(f"{n:>9}" for n in numbers))


def pg_bench_url(admin_dsn: str) -> str:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,))
        if exists.fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    return admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + (
        f"/{BENCH_DB}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitors", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--sqlite", type=Path, default=Path("/tmp/pop3watch-bench/report.db"))
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    if args.only in (None, "sqlite"):
        asyncio.run(bench(f"sqlite:///{args.sqlite}", args.monitors, args.days, args.repeat))
    if args.only in (None, "postgresql"):
        asyncio.run(bench(pg_bench_url(args.pg), args.monitors, args.days, args.repeat))


if __name__ == "__main__":
    main()
