"""Hourly and daily rollups computed from raw results, behind a watermark.

Job: keep ``rollups_hourly`` and ``rollups_daily`` complete for every closed hour and day,
so uptime and reports never scan months of raw results. Rule: always recompute from raw
(exact nearest-rank p95 needs every value) and upsert, so a rerun is harmless; the
watermark in ``meta`` says "every hour before this is rolled up" and only moves forward.

How the work is cut:
- Bucketing happens in Python (``floor_hour`` of each ``started_at``), not in SQL, so there
  is one definition for both dialects and no date-function quirks.
- Time advances a day at a time, but empty stretches are skipped with one indexed
  ``min(started_at)`` query, so a gap of months costs one query, not 2,000 hourly loops.
- Within a day, monitors are read in slices through the (monitor_id, started_at) index,
  which bounds memory to one slice-day of values.
- Each slice is upserted in its own short write transaction (SQLite: the engine's writers
  wait on it at most a moment); the watermark moves after each completed day, so an
  interrupted run resumes where it stopped.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pop3watch.storage import dml
from pop3watch.storage.coltypes import as_utc
from pop3watch.storage.engine import Database
from pop3watch.storage.periods import DAY, floor_day, floor_hour
from pop3watch.storage.schema import meta, monitors, results, rollups_daily, rollups_hourly
from pop3watch.storage.stats import Bucket

WATERMARK_KEY = "rollup_watermark"
#: Monitors read per query while rolling up one day.
MONITOR_SLICE = 200
#: Rows per upsert statement.
WRITE_CHUNK = 2000


async def read_watermark(conn: AsyncConnection) -> datetime | None:
    value = await conn.scalar(select(meta.c.value).where(meta.c.key == WATERMARK_KEY))
    return None if value is None else as_utc(datetime.fromisoformat(value))


async def write_watermark(
    conn: AsyncConnection, dialect: str, value: datetime | None, *, forward_only: bool = True
) -> None:
    """Store the watermark; with ``forward_only`` an older value never replaces a newer.

    The comparison happens inside the upsert, so two concurrent runners cannot move it
    back (fixed-width UTC ISO text sorts like the instants it names).
    """
    if value is None:
        await conn.execute(meta.delete().where(meta.c.key == WATERMARK_KEY))
        return
    text = as_utc(value).isoformat(timespec="microseconds")
    stmt = dml.insert(dialect, meta).values(key=WATERMARK_KEY, value=text)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={"value": stmt.excluded.value},
            where=(meta.c.value < stmt.excluded.value) if forward_only else None,
        )
    )


async def rollup(db: Database, now: datetime) -> int:
    """Roll up every closed hour (and day) not rolled up yet; returns rows written."""
    end = floor_hour(as_utc(now, "now"))
    async with db.engine.connect() as conn:
        start = await read_watermark(conn)
        if start is None:
            first = await conn.scalar(select(func.min(results.c.started_at)))
            if first is None:
                return 0
            start = floor_hour(first)
        monitor_ids = list(await conn.scalars(select(monitors.c.id).order_by(monitors.c.id)))
    written = 0
    cursor = start
    while cursor < end:
        day = floor_day(cursor)
        if cursor == day:  # at a day boundary: jump over days without results
            async with db.engine.connect() as conn:
                following = await conn.scalar(
                    select(func.min(results.c.started_at)).where(
                        results.c.started_at >= cursor, results.c.started_at < end
                    )
                )
            if following is None:
                break
            day = floor_day(following)
        written += await _roll_day(db, monitor_ids, day, max(cursor, day), end)
        cursor = day + DAY
        async with db.write_engine.begin() as conn:
            await write_watermark(conn, db.dialect, min(cursor, end))
    async with db.write_engine.begin() as conn:
        await write_watermark(conn, db.dialect, end)
    return written


async def _roll_day(
    db: Database, monitor_ids: list[int], day: datetime, hours_from: datetime, end: datetime
) -> int:
    """Hourly rows for ``[hours_from, end)`` within ``day``; the daily row if it closed."""
    closed = day + DAY <= end
    read_from = day if closed else hours_from
    read_to = min(day + DAY, end)
    written = 0
    for i in range(0, len(monitor_ids), MONITOR_SLICE):
        ids = monitor_ids[i : i + MONITOR_SLICE]
        async with db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        results.c.monitor_id,
                        results.c.started_at,
                        results.c.status,
                        results.c.rtt_ms,
                        results.c.maintenance,
                    ).where(
                        results.c.monitor_id.in_(ids),
                        results.c.started_at >= read_from,
                        results.c.started_at < read_to,
                    )
                )
            ).all()
        if not rows:
            continue
        hourly: dict[tuple[int, datetime], Bucket] = defaultdict(Bucket)
        daily: dict[int, Bucket] = defaultdict(Bucket)
        for monitor_id, started_at, status, rtt_ms, maintenance in rows:
            if closed:
                daily[monitor_id].add(status, rtt_ms, bool(maintenance))
            if started_at >= hours_from:
                hour = floor_hour(started_at)
                hourly[(monitor_id, hour)].add(status, rtt_ms, bool(maintenance))
        # Sorted by key: concurrent runners then lock rows in the same order (no deadlock).
        hourly_rows = [
            {"monitor_id": m, "bucket": hour, **hourly[(m, hour)].columns()}
            for m, hour in sorted(hourly)
            if hourly[(m, hour)].count
        ]
        daily_rows = [
            {"monitor_id": m, "bucket": day, **daily[m].columns()}
            for m in sorted(daily)
            if daily[m].count
        ]
        async with db.write_engine.begin() as conn:
            written += await _upsert(conn, db.dialect, rollups_hourly, hourly_rows)
            written += await _upsert(conn, db.dialect, rollups_daily, daily_rows)
    return written


async def _upsert(
    conn: AsyncConnection, dialect: str, table: Table, rows: list[dict[str, Any]]
) -> int:
    stmt = dml.upsert(dialect, table, ["monitor_id", "bucket"])
    for i in range(0, len(rows), WRITE_CHUNK):
        await conn.execute(stmt, rows[i : i + WRITE_CHUNK])
    return len(rows)
