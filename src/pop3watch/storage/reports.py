"""Uptime and period reports: aggregated in SQL per monitor, combined in Python per part.

Job: answer "how did these monitors do over this period" from the cheapest exact-enough
source (``periods.plan``): daily rollups, hourly rollups, raw results after the watermark.
Rule: every query groups by monitor in the database and returns at most one row per
monitor and part; Python only adds those rows up. Queries name their monitors
(``monitor_id IN (...)``) so both databases seek the (monitor_id, bucket) primary key
instead of scanning a year of rollups.

p95 over a period is the count-weighted mean of the parts' p95s: each rollup bucket's
exact nearest-rank p95 weighted by its number of response times, and for each raw part an
exact nearest-rank p95 computed by the database in the same pass (``percentile_disc`` on
PostgreSQL, our ``pop3watch_p95`` aggregate on SQLite), weighted the same way. It is exact
when the period is one bucket or raw only, close to the true p95 when latency is stable,
and smooths a spike that fills only a few buckets (a mean of percentiles is not a
percentile). The true p95 would need every raw value of the period, which retention does
not keep and which would cost seconds to sort for a month of 1,000 monitors.

Downtime and incidents come from ``transitions``: the state at ``since`` is the one the
latest earlier transition entered; time in ``down`` or ``lost`` is summed and clipped to the
period, and an outage still open at ``until`` counts until ``until``. An incident is a
transition from a non-failing state into ``down`` or ``lost``; ``down -> down`` re-alerts and
``down -> lost`` are the same incident.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Double,
    Select,
    Table,
    bindparam,
    case,
    cast,
    func,
    null,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from pop3watch.model import MonitorState
from pop3watch.storage.engine import SQLITE_P95
from pop3watch.storage.periods import PeriodPlan, Range, plan
from pop3watch.storage.records import ReportRow
from pop3watch.storage.rollups import read_watermark
from pop3watch.storage.schema import monitors, results, rollups_daily, rollups_hourly, transitions
from pop3watch.storage.stats import P95, Totals

#: Monitor ids bound per query (both drivers cap the number of parameters).
ID_CHUNK = 5000


def chunks(ids: Sequence[int], size: int = ID_CHUNK) -> Iterable[list[int]]:
    for i in range(0, len(ids), size):
        yield list(ids[i : i + size])


#: The bound list of monitor ids every query of a report shares (bound once per chunk).
IDS: BindParameter[int] = bindparam("monitor_ids", expanding=True)
_COLUMNS = ("checks", "failures", "warnings", "rtt_count", "rtt_sum", "rtt_min", "rtt_max")


async def totals(
    conn: AsyncConnection,
    monitor_ids: Sequence[int],
    since: datetime,
    until: datetime,
    *,
    with_p95: bool,
) -> dict[int, Totals]:
    """Per-monitor sums over ``[since, until)`` from rollups and raw results.

    One statement per chunk of monitors: a ``UNION ALL`` of one aggregate per part of the
    plan (one per range: an OR of ranges would defeat the (monitor_id, bucket) seek),
    summed again per monitor, so the database returns one row per monitor.
    """
    parts = plan(since, until, await read_watermark(conn))
    query = totals_query(conn.dialect.name, parts, with_p95=with_p95)
    found: dict[int, Totals] = {m: Totals() for m in monitor_ids}
    if query is None:
        return found
    for ids in chunks(monitor_ids):
        for monitor_id, *values in await conn.execute(query, {"monitor_ids": ids}):
            found[monitor_id].merge(*values)
    return found


def totals_query(dialect: str, parts: PeriodPlan, *, with_p95: bool) -> Select[Any] | None:
    """The statement behind ``totals`` (None for an empty period); binds ``IDS``."""
    selects: list[Select[Any]] = [
        *(_rollup_query(rollups_daily, span) for span in parts.daily),
        *(_rollup_query(rollups_hourly, span) for span in parts.hourly),
        *(_raw_query(dialect, span, with_p95=with_p95) for span in parts.raw),
    ]
    if not selects:
        return None
    both = union_all(*selects).subquery()
    return select(
        both.c.monitor_id,
        *(func.sum(both.c[name]) for name in _COLUMNS[:5]),
        func.min(both.c.rtt_min),
        func.max(both.c.rtt_max),
        func.sum(both.c.p95_weighted),
    ).group_by(both.c.monitor_id)


def _rollup_query(table: Table, span: Range) -> Select[Any]:
    c = table.c
    return (
        select(
            c.monitor_id,
            func.sum(c.count).label("checks"),
            func.sum(c.failures).label("failures"),
            func.sum(c.warnings).label("warnings"),
            func.sum(c.rtt_count).label("rtt_count"),
            func.sum(c.rtt_sum).label("rtt_sum"),
            func.min(c.rtt_min).label("rtt_min"),
            func.max(c.rtt_max).label("rtt_max"),
            func.sum(c.rtt_p95 * c.rtt_count).label("p95_weighted"),
        )
        .where(c.monitor_id.in_(IDS), c.bucket >= span[0], c.bucket < span[1])
        .group_by(c.monitor_id)
    )


def p95(dialect: str, value: ColumnElement[float]) -> ColumnElement[float]:
    """Exact nearest-rank p95 aggregate: ``percentile_disc`` or our SQLite aggregate."""
    if dialect == "postgresql":
        return func.percentile_disc(P95 / 100).within_group(value)
    return getattr(func, SQLITE_P95)(value)  # type: ignore[no-any-return]


def _raw_query(dialect: str, span: Range, *, with_p95: bool) -> Select[Any]:
    """The same columns as a rollup query, aggregated from raw results in one pass."""
    c = results.c
    rtt = case((c.status != "down", c.rtt_ms), else_=None)  # see stats: scored times only
    weighted = p95(dialect, rtt) * func.count(rtt) if with_p95 else cast(null(), Double)
    return (
        select(
            c.monitor_id,
            func.count().label("checks"),
            func.sum(case((c.status == "down", 1), else_=0)).label("failures"),
            func.sum(case((c.status == "warn", 1), else_=0)).label("warnings"),
            func.count(rtt).label("rtt_count"),
            func.sum(rtt).label("rtt_sum"),
            func.min(rtt).label("rtt_min"),
            func.max(rtt).label("rtt_max"),
            weighted.label("p95_weighted"),
        )
        .where(
            c.monitor_id.in_(IDS),
            c.started_at >= span[0],
            c.started_at < span[1],
            c.maintenance.is_(False),
        )
        .group_by(c.monitor_id)
    )


# --- downtime and incidents -----------------------------------------------------------


async def outages(
    conn: AsyncConnection, monitor_ids: Sequence[int], since: datetime, until: datetime
) -> dict[int, tuple[float, int]]:
    """monitor_id -> (seconds in down/lost within the period, incidents started in it)."""
    found: dict[int, tuple[float, int]] = {}
    for ids in chunks(monitor_ids):
        before = (
            select(transitions.c.to_state)
            .where(transitions.c.monitor_id == monitors.c.id, transitions.c.at < since)
            .order_by(transitions.c.at.desc(), transitions.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        initial: dict[int, str | None] = {
            row[0]: row[1]
            for row in await conn.execute(
                select(monitors.c.id, before).where(monitors.c.id.in_(ids))
            )
        }
        during = await conn.execute(
            select(
                transitions.c.monitor_id,
                transitions.c.at,
                transitions.c.from_state,
                transitions.c.to_state,
            )
            .where(
                transitions.c.monitor_id.in_(ids),
                transitions.c.at >= since,
                transitions.c.at < until,
            )
            .order_by(transitions.c.monitor_id, transitions.c.at, transitions.c.id)
        )
        changes: dict[int, list[tuple[datetime, str, str]]] = {m: [] for m in ids}
        for monitor_id, at, from_state, to_state in during:
            changes[monitor_id].append((at, from_state, to_state))
        for monitor_id in ids:
            found[monitor_id] = _outage(initial.get(monitor_id), changes[monitor_id], since, until)
    return found


def _failing(state: str | None) -> bool:
    return state is not None and MonitorState(state).failing


def _outage(
    state: str | None, changes: list[tuple[datetime, str, str]], since: datetime, until: datetime
) -> tuple[float, int]:
    down = 0.0
    incidents = 0
    mark = since
    for at, from_state, to_state in changes:
        if _failing(state):
            down += (at - mark).total_seconds()
        if _failing(to_state) and not _failing(from_state):
            incidents += 1
        state, mark = to_state, at
    if _failing(state):
        down += (until - mark).total_seconds()
    return down, incidents


# --- the report -----------------------------------------------------------------------


async def report(
    conn: AsyncConnection,
    since: datetime,
    until: datetime,
    monitor_ids: Sequence[int] | None,
) -> list[ReportRow]:
    query = select(monitors.c.id, monitors.c.name).order_by(monitors.c.name)
    if monitor_ids is None:
        query = query.where(monitors.c.deleted_at.is_(None))
    names: dict[int, str] = {}
    for ids in chunks(list(monitor_ids)) if monitor_ids is not None else [None]:
        selected = query if ids is None else query.where(monitors.c.id.in_(ids))
        names.update({row[0]: row[1] for row in await conn.execute(selected)})
    ids = list(names)
    sums = await totals(conn, ids, since, until, with_p95=True)
    down = await outages(conn, ids, since, until)
    rows = []
    for monitor_id, name in sorted(names.items(), key=lambda item: item[1]):
        total = sums[monitor_id]
        downtime, incidents = down[monitor_id]
        rows.append(
            ReportRow(
                monitor_id=monitor_id,
                name=name,
                checks=total.count,
                failures=total.failures,
                warnings=total.warnings,
                uptime_pct=total.uptime_pct,
                downtime_s=downtime,
                incidents=incidents,
                rtt_avg_ms=total.rtt_avg,
                rtt_p95_ms=total.rtt_p95,
                rtt_min_ms=total.rtt_min,
                rtt_max_ms=total.rtt_max,
            )
        )
    return rows
