"""UTC buckets and how a period splits into rolled-up and raw parts.

Job: pure date arithmetic shared by rollups, uptime and reports. Rule: no I/O; every
bucket is the start of a UTC hour or day, every range is half-open ``[start, end)``.

A period ``[since, until)`` is answered from the cheapest source that is exact enough:
- whole days from ``rollups_daily``,
- the whole hours around them from ``rollups_hourly``,
- the partial hours at either edge, and everything at or after the rollup watermark
  (hours not rolled up yet), from raw ``results``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

Range = tuple[datetime, datetime]


def floor_hour(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def floor_day(value: datetime) -> datetime:
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def ceil_hour(value: datetime) -> datetime:
    floor = floor_hour(value)
    return floor if floor == value else floor + HOUR


def ceil_day(value: datetime) -> datetime:
    floor = floor_day(value)
    return floor if floor == value else floor + DAY


@dataclass(frozen=True)
class PeriodPlan:
    """Which table answers which part of a period; the ranges never overlap."""

    daily: list[Range] = field(default_factory=list)
    hourly: list[Range] = field(default_factory=list)
    raw: list[Range] = field(default_factory=list)


def plan(since: datetime, until: datetime, watermark: datetime | None) -> PeriodPlan:
    """Split ``[since, until)``; hours before ``watermark`` are rolled up (if any)."""
    if until <= since:
        return PeriodPlan()
    first_hour = ceil_hour(since)
    rolled_end = min(floor_hour(until), watermark) if watermark is not None else first_hour
    if rolled_end <= first_hour:
        return PeriodPlan(raw=[(since, until)])
    raw = [r for r in ((since, first_hour), (rolled_end, until)) if r[0] < r[1]]
    first_day, last_day = ceil_day(first_hour), floor_day(rolled_end)
    if last_day <= first_day:
        return PeriodPlan(hourly=[(first_hour, rolled_end)], raw=raw)
    hourly = [r for r in ((first_hour, first_day), (last_day, rolled_end)) if r[0] < r[1]]
    return PeriodPlan(daily=[(first_day, last_day)], hourly=hourly, raw=raw)
