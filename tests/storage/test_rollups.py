"""Rollups: exact per-bucket figures from raw results, idempotent, gap-proof, purge-proof."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from pop3watch.storage import RollupRow, Storage, StoredResult, WriteBatch
from pop3watch.storage.stats import nearest_rank
from tests.storage.helpers import make_monitors, ts


def r(
    monitor_id: int,
    at: str,
    status: str = "up",
    rtt: float | None = None,
    maintenance: bool = False,
) -> StoredResult:
    return StoredResult(
        monitor_id=monitor_id, started_at=ts(at), status=status, rtt_ms=rtt, maintenance=maintenance
    )


def hand_data(a: int) -> list[StoredResult]:
    """2025-03-01: hour 10 mixed, hour 11 twenty ups, hour 12 empty, hour 13 one failure."""
    rows = [r(a, f"2025-03-01 10:0{i}", "up", v) for i, v in enumerate([5, 1, 9, 3, 7])]
    rows += [
        r(a, "2025-03-01 10:10", "warn", 11),
        r(a, "2025-03-01 10:11", "down", 999),  # a failure's rtt is not a response time
        r(a, "2025-03-01 10:12", "down", 5000, maintenance=True),  # not scored at all
    ]
    rows += [r(a, f"2025-03-01 11:{i:02d}", "up", float(i + 1)) for i in range(20)]
    rows += [r(a, "2025-03-01 13:30", "down")]
    return rows


def row(
    a: int, bucket: str, count: int, failures: int, warnings: int, rtts: list[float]
) -> RollupRow:
    return RollupRow(
        monitor_id=a,
        bucket=ts(bucket),
        count=count,
        failures=failures,
        warnings=warnings,
        rtt_count=len(rtts),
        rtt_min=min(rtts) if rtts else None,
        rtt_max=max(rtts) if rtts else None,
        rtt_sum=sum(rtts) if rtts else None,
        rtt_p95=None,
    )


def test_nearest_rank_by_hand() -> None:
    assert nearest_rank([]) is None
    assert nearest_rank([4.0]) == 4.0
    assert nearest_rank([1, 3, 5, 7, 9, 11]) == 11  # rank ceil(5.7) = 6
    assert nearest_rank(list(range(1, 21))) == 19  # rank ceil(19.0) = 19
    assert nearest_rank(list(range(1, 101))) == 95
    assert nearest_rank(list(range(1, 102))) == 96  # rank ceil(95.95) = 96


async def test_rollup_is_exact_against_a_hand_computation(storage: Storage) -> None:
    a = (await make_monitors(storage, "a"))["a"]
    await storage.write_batch(WriteBatch(hand_data(a), [], []))

    written = await storage.rollup(ts("2025-03-02 00:05"))

    hourly = await storage.rollups(a)
    expected = [
        (row(a, "2025-03-01 10:00", 7, 1, 1, [1, 3, 5, 7, 9, 11]), 11.0),
        (row(a, "2025-03-01 11:00", 20, 0, 0, [float(i) for i in range(1, 21)]), 19.0),
        (row(a, "2025-03-01 13:00", 1, 1, 0, []), None),
    ]
    assert [
        (
            h.bucket,
            h.count,
            h.failures,
            h.warnings,
            h.rtt_count,
            h.rtt_min,
            h.rtt_max,
            h.rtt_sum,
            h.rtt_p95,
        )
        for h in hourly
    ] == [
        (
            e.bucket,
            e.count,
            e.failures,
            e.warnings,
            e.rtt_count,
            e.rtt_min,
            e.rtt_max,
            e.rtt_sum,
            p95,
        )
        for e, p95 in expected
    ]
    assert hourly[0].rtt_avg == 6.0
    [day] = await storage.rollups(a, daily=True)
    # 26 response times: 1..20 plus 1,3,5,7,9,11; rank ceil(0.95*26) = 25 -> 19
    assert (day.bucket, day.count, day.failures, day.warnings, day.rtt_count) == (
        ts("2025-03-01 00:00"),
        28,
        2,
        1,
        26,
    )
    assert (day.rtt_min, day.rtt_max, day.rtt_sum, day.rtt_p95) == (1, 20, 246, 19)
    assert written == 4
    assert await storage.rollup_watermark() == ts("2025-03-02 00:00")


async def test_rollup_twice_changes_nothing_and_a_recompute_gives_the_same_rows(
    storage: Storage,
) -> None:
    a = (await make_monitors(storage, "a"))["a"]
    await storage.write_batch(WriteBatch(hand_data(a), [], []))
    now = ts("2025-03-02 01:00")
    assert await storage.rollup(now) == 4
    first = (await storage.rollups(a), await storage.rollups(a, daily=True))
    assert await storage.rollup(now) == 0
    await storage.rewind_rollups(None)
    assert await storage.rollup(now) == 4
    await storage.rewind_rollups(ts("2025-03-01 11:00"))
    assert await storage.rollup(now) == 3  # hours 11 and 13, and the day again
    assert (await storage.rollups(a), await storage.rollups(a, daily=True)) == first


async def test_open_hours_wait_and_a_day_closes_even_without_late_results(
    storage: Storage,
) -> None:
    a = (await make_monitors(storage, "a"))["a"]
    await storage.write_batch(WriteBatch(hand_data(a), [], []))
    assert await storage.rollup(ts("2025-03-01 11:59")) == 1  # only hour 10 is closed
    assert [h.bucket for h in await storage.rollups(a)] == [ts("2025-03-01 10:00")]
    assert await storage.rollup_watermark() == ts("2025-03-01 11:00")
    await storage.rollup(ts("2025-03-01 14:00"))
    assert await storage.rollups(a, daily=True) == []
    # Nothing arrives after 14:00, yet the day must still be rolled up once it closes.
    assert await storage.rollup(ts("2025-03-02 00:01")) == 1
    [day] = await storage.rollups(a, daily=True)
    assert day.count == 28
    # an older "now" never moves the watermark back
    assert await storage.rollup(ts("2025-03-01 12:00")) == 0
    assert await storage.rollup_watermark() == ts("2025-03-02 00:00")


async def test_rollup_with_no_results_does_nothing(storage: Storage) -> None:
    assert await storage.rollup(ts("2025-03-02 00:00")) == 0
    assert await storage.rollup_watermark() is None


async def test_long_gaps_are_skipped_not_walked(storage: Storage) -> None:
    ids = await make_monitors(storage, "a", "b")
    a, b = ids["a"], ids["b"]
    rows = [
        r(a, "2020-01-01 00:30", "up", 1.0),
        r(b, "2020-01-01 23:59", "down"),
        r(a, "2025-03-01 10:00", "up", 2.0),
        r(b, "2025-03-01 10:01", "warn", 3.0),
    ]
    await storage.write_batch(WriteBatch(rows, [], []))
    started = time.monotonic()
    written = await storage.rollup(ts("2025-03-03 00:00"))
    assert time.monotonic() - started < 5  # 1,900 empty days would take far longer
    assert written == 8  # per monitor: 2 hours + 2 days
    assert [d.bucket for d in await storage.rollups(a, daily=True)] == [
        ts("2020-01-01 00:00"),
        ts("2025-03-01 00:00"),
    ]
    [old_b] = await storage.rollups(b, since=ts("2020-01-01 00:00"), until=ts("2021-01-01 00:00"))
    assert (old_b.bucket, old_b.failures) == (ts("2020-01-01 23:00"), 1)
    assert await storage.rollup_watermark() == ts("2025-03-03 00:00")


async def test_purge_deletes_raw_results_and_keeps_rollups(storage: Storage) -> None:
    a = (await make_monitors(storage, "a"))["a"]
    await storage.write_batch(WriteBatch(hand_data(a), [], []))
    await storage.write_batch(WriteBatch([r(a, "2025-03-02 08:00", "up", 1.0)], [], []))
    await storage.rollup(ts("2025-03-02 00:00"))
    before = (await storage.rollups(a), await storage.rollups(a, daily=True))

    assert await storage.purge_results(ts("2025-03-02 00:00")) == len(hand_data(a))
    assert [x.started_at for x in await storage.results(a)] == [ts("2025-03-02 08:00")]
    assert (await storage.rollups(a), await storage.rollups(a, daily=True)) == before
    assert await storage.purge_results(ts("2025-03-02 00:00")) == 0
    # uptime for the purged day still comes from the rollups: 28 checks, 2 failures
    up = await storage.uptime([a], since=ts("2025-03-01 00:00"), now=ts("2025-03-02 00:00"))
    assert up[a] == pytest.approx(26 / 28 * 100)


async def test_purge_works_in_chunks(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    from pop3watch.storage import repository

    monkeypatch.setattr(repository, "PURGE_CHUNK", 7)
    a = (await make_monitors(storage, "a"))["a"]
    start = ts("2025-03-01 00:00")
    rows = [
        StoredResult(monitor_id=a, started_at=start + timedelta(minutes=i), status="up")
        for i in range(30)
    ]
    await storage.write_batch(WriteBatch(rows, [], []))
    assert await storage.purge_results(start + timedelta(minutes=22)) == 22
    assert len(await storage.results(a)) == 8


async def test_concurrent_rollups_agree(db_url: str) -> None:
    stores = [await Storage.connect(db_url) for _ in range(3)]
    try:
        a = (await make_monitors(stores[0], "a"))["a"]
        await stores[0].write_batch(WriteBatch(hand_data(a), [], []))
        await asyncio.gather(*(s.rollup(ts("2025-03-02 00:05")) for s in stores))
        assert [h.count for h in await stores[0].rollups(a)] == [7, 20, 1]
        assert [d.count for d in await stores[0].rollups(a, daily=True)] == [28]
        assert await stores[0].rollup_watermark() == ts("2025-03-02 00:00")
    finally:
        for store in stores:
            await store.close()
