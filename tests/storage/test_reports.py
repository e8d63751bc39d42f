"""Uptime and reports: rollups and raw results combined exactly, outages from transitions."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from pop3watch.model import AlertKind, MonitorState, Transition
from pop3watch.storage import MonitorRecord, Storage, StoredResult, WriteBatch
from pop3watch.storage.stats import nearest_rank
from tests.storage.helpers import make_monitors, ts

START = ts("2025-03-01 00:00")
NOW = ts("2025-03-03 14:20")  # rollups: days 03-01 and 03-02, hours up to 14:00 on 03-03


@dataclass
class Expected:
    checks: int
    failures: int
    warnings: int
    rtts: list[float]

    @property
    def uptime(self) -> float | None:
        return (self.checks - self.failures) / self.checks * 100 if self.checks else None


def brute(rows: list[StoredResult], monitor_id: int, since: datetime, until: datetime) -> Expected:
    mine = [
        x
        for x in rows
        if x.monitor_id == monitor_id and since <= x.started_at < until and not x.maintenance
    ]
    return Expected(
        checks=len(mine),
        failures=sum(x.status == "down" for x in mine),
        warnings=sum(x.status == "warn" for x in mine),
        rtts=sorted(x.rtt_ms for x in mine if x.status != "down" and x.rtt_ms is not None),
    )


def random_rows(ids: list[int], seed: int = 7) -> list[StoredResult]:
    rng = random.Random(seed)
    rows = []
    at = START
    while at < NOW:
        for monitor_id in ids:
            status = rng.choices(["up", "warn", "down"], weights=[85, 10, 5])[0]
            rtt = None if rng.random() < 0.1 else round(rng.uniform(5, 400), 3)
            rows.append(
                StoredResult(
                    monitor_id=monitor_id,
                    started_at=at,
                    status=status,
                    rtt_ms=rtt,
                    maintenance=rng.random() < 0.03,
                )
            )
        at += timedelta(minutes=rng.choice([3, 7, 11]))
    return rows


@pytest.fixture
async def loaded(storage: Storage) -> tuple[Storage, list[int], list[StoredResult]]:
    ids = list((await make_monitors(storage, "a", "b")).values())
    rows = random_rows(ids)
    await storage.write_batch(WriteBatch(rows, [], []))
    await storage.rollup(NOW)
    return storage, ids, rows


PERIODS = [
    ("2025-03-01 00:00", "2025-03-03 14:20"),  # days + hours + raw tail
    ("2025-03-01 10:17", "2025-03-03 12:41"),  # ragged at both ends, inside the rolled part
    ("2025-03-01 10:17", "2025-03-01 10:48"),  # inside one hour: raw only
    ("2025-03-02 00:00", "2025-03-03 00:00"),  # exactly one day
    ("2025-03-03 13:05", "2025-03-03 14:20"),  # around the watermark
    ("2025-03-03 14:00", "2025-03-03 14:20"),  # after the watermark: raw only
    ("2025-02-01 00:00", "2025-02-02 00:00"),  # before any data
]


@pytest.mark.parametrize(("since", "until"), PERIODS)
async def test_uptime_and_report_totals_equal_a_brute_force_over_raw(
    loaded: tuple[Storage, list[int], list[StoredResult]], since: str, until: str
) -> None:
    storage, ids, rows = loaded
    start, end = ts(since), ts(until)
    uptime = await storage.uptime(ids, since=start, now=end)
    report = {row.monitor_id: row for row in await storage.report(since=start, until=end)}
    for monitor_id in ids:
        want = brute(rows, monitor_id, start, end)
        got = report[monitor_id]
        assert (got.checks, got.failures, got.warnings) == (
            want.checks,
            want.failures,
            want.warnings,
        )
        assert uptime[monitor_id] == pytest.approx(want.uptime)
        assert got.uptime_pct == pytest.approx(want.uptime)
        if want.rtts:
            assert got.rtt_min_ms == min(want.rtts) and got.rtt_max_ms == max(want.rtts)
            assert got.rtt_avg_ms == pytest.approx(sum(want.rtts) / len(want.rtts))
            assert got.rtt_p95_ms is not None
            assert min(want.rtts) <= got.rtt_p95_ms <= max(want.rtts)
        else:
            assert got.rtt_avg_ms is got.rtt_p95_ms is got.rtt_min_ms is None


@pytest.mark.parametrize(("since", "until"), [PERIODS[2], PERIODS[3], PERIODS[5]])
async def test_p95_is_exact_for_one_bucket_or_raw_only(
    loaded: tuple[Storage, list[int], list[StoredResult]], since: str, until: str
) -> None:
    storage, ids, rows = loaded
    start, end = ts(since), ts(until)
    for row in await storage.report(since=start, until=end, monitor_ids=ids):
        want = brute(rows, row.monitor_id, start, end)
        assert row.rtt_p95_ms == nearest_rank(want.rtts)


async def test_uptime_mixes_rollups_and_raw_after_the_watermark(storage: Storage) -> None:
    a = (await make_monitors(storage, "a"))["a"]

    def at(when: str, status: str) -> StoredResult:
        return StoredResult(monitor_id=a, started_at=ts(when), status=status, rtt_ms=1.0)

    rolled = [at("2025-03-01 10:00", "up"), at("2025-03-01 10:30", "down")]
    await storage.write_batch(WriteBatch(rolled, [], []))
    await storage.rollup(ts("2025-03-01 11:00"))
    assert await storage.rollup_watermark() == ts("2025-03-01 11:00")
    fresh = [at("2025-03-01 11:10", "up"), at("2025-03-01 11:20", "warn")]
    await storage.write_batch(WriteBatch(fresh, [], []))
    up = await storage.uptime([a], since=ts("2025-03-01 10:00"), now=ts("2025-03-01 11:30"))
    assert up == {a: pytest.approx(75.0)}  # 4 checks, 1 down: 2 from rollups, 2 raw
    # A monitor with no checks has no uptime, not 0 % or 100 %.
    b = (await make_monitors(storage, "a", "b"))["b"]
    assert (
        await storage.uptime([b], since=ts("2025-03-01 10:00"), now=ts("2025-03-01 11:30"))
    ) == {b: None}


def flip(monitor_id: int, at: str, src: MonitorState, dst: MonitorState) -> Transition:
    alert = AlertKind.DOWN if dst.failing else None
    return Transition(
        monitor_id=monitor_id,
        at=ts(at),
        from_state=src,
        to_state=dst,
        reason_code=None,
        reason_message="x",
        alert=alert,
    )


async def test_report_downtime_is_clipped_and_incidents_counted(storage: Storage) -> None:
    ids = await make_monitors(storage, "a", "b")
    a, b = ids["a"], ids["b"]
    up, warn, down, lost = MonitorState.UP, MonitorState.WARN, MonitorState.DOWN, MonitorState.LOST
    await storage.write_batch(
        WriteBatch(
            [],
            [],
            [
                flip(a, "2025-03-01 08:00", up, down),
                flip(a, "2025-03-01 09:00", down, down),  # a repeated alert, same incident
                flip(a, "2025-03-01 10:00", down, lost),  # still the same incident
                flip(a, "2025-03-01 11:00", lost, up),
                flip(a, "2025-03-01 12:00", up, warn),
                flip(a, "2025-03-01 13:00", warn, down),  # a new incident, still open
            ],
        )
    )

    async def outage(since: str, until: str) -> dict[int, tuple[float, int]]:
        rows = await storage.report(since=ts(since), until=ts(until))
        return {row.monitor_id: (row.downtime_s, row.incidents) for row in rows}

    # starts inside an outage (down since 08:00): 09:30-11:00 and 13:00-14:00 (open)
    assert await outage("2025-03-01 09:30", "2025-03-01 14:00") == {a: (9000.0, 1), b: (0, 0)}
    assert await outage("2025-03-01 07:00", "2025-03-01 12:00") == {a: (10800.0, 1), b: (0, 0)}
    assert await outage("2025-03-01 00:00", "2025-03-02 00:00") == {a: (50400.0, 2), b: (0, 0)}
    assert await outage("2025-03-01 11:00", "2025-03-01 13:00") == {a: (0.0, 0), b: (0, 0)}


async def test_report_rows_cover_current_monitors_or_the_ones_asked_for(
    storage: Storage,
) -> None:
    ids = await make_monitors(storage, "b", "a", "gone")
    await storage.sync_monitors(
        [MonitorRecord(name=n, probe="pop3", enabled=True, config={}) for n in ("a", "b")]
    )
    await storage.write_batch(
        WriteBatch(
            [
                StoredResult(
                    monitor_id=ids["a"], started_at=ts("2025-03-01 10:00"), status="up", rtt_ms=10.0
                ),
                StoredResult(monitor_id=ids["a"], started_at=ts("2025-03-01 10:05"), status="down"),
            ],
            [],
            [],
        )
    )
    rows = await storage.report(since=ts("2025-03-01 00:00"), until=ts("2025-03-02 00:00"))
    assert [(r.name, r.checks, r.failures, r.uptime_pct, r.rtt_avg_ms) for r in rows] == [
        ("a", 2, 1, 50.0, 10.0),
        ("b", 0, 0, None, None),
    ]
    asked = await storage.report(
        since=ts("2025-03-01 00:00"), until=ts("2025-03-02 00:00"), monitor_ids=[ids["gone"]]
    )
    assert [r.name for r in asked] == ["gone"]
