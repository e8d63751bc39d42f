"""The scheduler on a fake clock: on time, spread, bounded, never blocked by a hung check."""

from __future__ import annotations

import asyncio
from collections import Counter

from pop3watch.engine.scheduler import Schedule, Scheduler, spread_offset
from tests.engine.fakeclock import FakeClock


def test_spread_is_stable_and_even() -> None:
    offsets = [spread_offset(f"monitor-{i}", 10.0) for i in range(10_000)]
    assert offsets == [spread_offset(f"monitor-{i}", 10.0) for i in range(10_000)]
    assert all(0 <= o < 10 for o in offsets)
    per_second = Counter(int(o) for o in offsets)
    assert len(per_second) == 10
    assert all(900 <= n <= 1100 for n in per_second.values()), per_second


def test_schedule_replaces_and_pops_in_order() -> None:
    schedule = Schedule()
    schedule.set(1, 5.0)
    schedule.set(2, 3.0)
    schedule.set(1, 1.0)  # rescheduled earlier: the old entry is dead
    schedule.set(3, 9.0)
    schedule.remove(3)
    assert schedule.next_due() == 1.0
    assert schedule.pop_due(5.0) == [(1, 1.0), (2, 3.0)]
    assert schedule.pop_due(100.0) == []
    assert len(schedule) == 0


async def test_jobs_start_on_time_and_repeat() -> None:
    clock = FakeClock()
    runs: list[tuple[int, float, float]] = []

    async def job(monitor_id: int, due: float) -> float:
        runs.append((monitor_id, due, clock.monotonic()))
        return due + 5.0

    scheduler = Scheduler(job, clock=clock, concurrency=10)
    for i in range(3):
        scheduler.add(i, clock.now + 1 + i)
    loop_task = asyncio.create_task(scheduler.run())
    await clock.advance(20.0)
    scheduler.stop()
    await loop_task
    assert Counter(m for m, _, _ in runs) == {0: 4, 1: 4, 2: 4}
    assert all(started == due for _, due, started in runs)
    assert scheduler.stats.percentile(99) == 0.0


async def test_a_hung_check_never_delays_another() -> None:
    clock = FakeClock()
    never = asyncio.Event()
    runs: Counter[int] = Counter()

    async def job(monitor_id: int, due: float) -> float:
        runs[monitor_id] += 1
        if monitor_id == 0:
            await never.wait()
        return due + 1.0

    scheduler = Scheduler(job, clock=clock, concurrency=10)
    scheduler.add(0, clock.now)
    scheduler.add(1, clock.now)
    loop_task = asyncio.create_task(scheduler.run())
    await clock.advance(10.0)
    assert runs[0] == 1
    assert runs[1] == 11
    assert scheduler.in_flight == 1
    cancelled = await scheduler.drain(grace_s=0.01)
    await loop_task
    assert cancelled == 1


async def test_concurrency_bound_and_lateness() -> None:
    clock = FakeClock()
    release = asyncio.Event()
    active = 0
    peak = 0

    async def job(monitor_id: int, due: float) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await release.wait()
        active -= 1

    scheduler = Scheduler(job, clock=clock, concurrency=2)
    for i in range(5):
        scheduler.add(i, clock.now)
    loop_task = asyncio.create_task(scheduler.run())
    await clock.advance(3.0)
    assert peak == 2
    assert scheduler.stats.started == 2
    release.set()
    await clock.settle()
    assert scheduler.stats.started == 5
    assert scheduler.stats.percentile(100) == 3.0  # the last three waited three seconds
    scheduler.stop()
    await loop_task


async def test_the_same_monitor_never_overlaps() -> None:
    clock = FakeClock()
    gate = asyncio.Event()
    starts = 0

    async def job(monitor_id: int, due: float) -> float:
        nonlocal starts
        starts += 1
        await gate.wait()
        return due + 1.0

    scheduler = Scheduler(job, clock=clock, concurrency=10)
    scheduler.add(1, clock.now)
    loop_task = asyncio.create_task(scheduler.run())
    await clock.advance(0.5)
    scheduler.add(1, clock.now)  # due again while the first run still runs
    await clock.advance(0.1)
    assert starts == 1
    assert scheduler.stats.due == 2
    gate.set()
    await clock.settle()
    await scheduler.drain(grace_s=1)
    await loop_task


async def test_a_failing_job_is_counted_and_the_loop_survives() -> None:
    clock = FakeClock()

    async def job(monitor_id: int, due: float) -> float:
        if monitor_id == 1:
            raise RuntimeError("bug")
        return due + 1

    scheduler = Scheduler(job, clock=clock, concurrency=10)
    scheduler.add(1, clock.now)
    scheduler.add(2, clock.now)
    loop_task = asyncio.create_task(scheduler.run())
    await clock.advance(3.0)
    assert scheduler.stats.failed_jobs == 1
    assert scheduler.stats.finished >= 3
    scheduler.stop()
    await loop_task
