"""When checks run: a heap of due times, spread start offsets, a concurrency bound.

Job: start every due check on time, each in its own task, so a slow or hung check never
delays another; measure how late each start was. Rules: knows nothing of POP3 or of
storage; the job it runs returns the monotonic time of that monitor's next run. Time
comes from a ``Clock`` so tests drive it with a fake one.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from pop3watch.percentiles import nearest_rank

log = logging.getLogger(__name__)

CheckJob = Callable[[int, float], Awaitable[float | None]]
"""``job(monitor_id, due)`` runs one check and returns the next due time (None: stop)."""


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic time and timers; the event loop's in production, a fake one in tests."""

    def monotonic(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle: ...


class LoopClock:
    """The running event loop's clock."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()

    def monotonic(self) -> float:
        return self._loop.time()

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        return self._loop.call_at(when, callback)


def spread_offset(key: str, interval: float) -> float:
    """A stable offset in [0, interval) derived from ``key``: 10,000 monitors with one
    interval start evenly spread instead of all at once, and in the same places after a
    restart."""
    return (zlib.crc32(key.encode("utf-8")) / 2**32) * interval


class Schedule:
    """A min-heap of (due, monitor_id) with replace-by-id (lazy deletion)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int]] = []
        self._current: dict[int, int] = {}  # monitor_id -> generation of its live entry
        self._generation = 0

    def set(self, monitor_id: int, due: float) -> None:
        """Schedule (or reschedule) ``monitor_id`` at ``due``."""
        self._generation += 1
        self._current[monitor_id] = self._generation
        heapq.heappush(self._heap, (due, self._generation, monitor_id))

    def remove(self, monitor_id: int) -> None:
        self._current.pop(monitor_id, None)

    def _live(self, entry: tuple[float, int, int]) -> bool:
        return self._current.get(entry[2]) == entry[1]

    def next_due(self) -> float | None:
        while self._heap and not self._live(self._heap[0]):
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[tuple[int, float]]:
        """Every (monitor_id, due) with due <= now, earliest first; they leave the schedule."""
        out: list[tuple[int, float]] = []
        while self._heap and self._heap[0][0] <= now:
            entry = heapq.heappop(self._heap)
            if self._live(entry):
                del self._current[entry[2]]
                out.append((entry[2], entry[0]))
        return out

    def __len__(self) -> int:
        return len(self._current)

    def __contains__(self, monitor_id: object) -> bool:
        return monitor_id in self._current


@dataclass
class SchedulerStats:
    """Counters for the service's own health (and the engine benchmark)."""

    due: int = 0
    started: int = 0
    finished: int = 0
    failed_jobs: int = 0
    lateness_s: list[float] = field(default_factory=list)
    keep_samples: int = 100_000

    def record_lateness(self, seconds: float) -> None:
        if len(self.lateness_s) >= self.keep_samples:
            del self.lateness_s[: self.keep_samples // 2]
        self.lateness_s.append(seconds)

    def percentile(self, p: float) -> float | None:
        """Nearest-rank percentile of recorded start lateness, in seconds."""
        return nearest_rank(sorted(self.lateness_s), p)


class Scheduler:
    """Starts due jobs in their own tasks, at most ``concurrency`` at once."""

    def __init__(self, job: CheckJob, *, clock: Clock, concurrency: int) -> None:
        self._job = job
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self.schedule = Schedule()
        self.stats = SchedulerStats()
        self._tasks: set[asyncio.Task[None]] = set()
        self._running_ids: set[int] = set()
        self._wake: asyncio.Future[None] | None = None
        self._stopping = False

    def add(self, monitor_id: int, due: float) -> None:
        """Schedule a monitor; wakes the loop if this is now the earliest entry."""
        self.schedule.set(monitor_id, due)
        self._poke()

    def remove(self, monitor_id: int) -> None:
        self.schedule.remove(monitor_id)

    def _poke(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run(self) -> None:
        """Start due jobs until ``stop`` is called."""
        loop = asyncio.get_running_loop()
        while not self._stopping:
            now = self._clock.monotonic()
            for monitor_id, due in self.schedule.pop_due(now):
                self._start(monitor_id, due)
            next_due = self.schedule.next_due()
            self._wake = loop.create_future()
            handle = None
            if next_due is not None:
                handle = self._clock.call_at(next_due, self._poke)
            try:
                await self._wake
            finally:
                if handle is not None:
                    handle.cancel()
                self._wake = None

    def _start(self, monitor_id: int, due: float) -> None:
        self.stats.due += 1
        if monitor_id in self._running_ids:
            # The previous check of this monitor is still running: never overlap the
            # same monitor; it is rescheduled when that one finishes.
            log.warning("monitor %s is still running at its next due time; skipped", monitor_id)
            return
        self._running_ids.add(monitor_id)
        task = asyncio.get_running_loop().create_task(self._run_job(monitor_id, due))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_job(self, monitor_id: int, due: float) -> None:
        next_due: float | None = None
        try:
            async with self._slots:
                if self._stopping:
                    return
                self.stats.started += 1
                self.stats.record_lateness(max(0.0, self._clock.monotonic() - due))
                next_due = await self._job(monitor_id, due)
                self.stats.finished += 1
        except asyncio.CancelledError:
            raise
        except Exception:
            self.stats.failed_jobs += 1
            log.exception("check job for monitor %s failed", monitor_id)
        finally:
            self._running_ids.discard(monitor_id)
        if next_due is not None and not self._stopping:
            self.add(monitor_id, next_due)

    def stop(self) -> None:
        """Start nothing new (the run loop ends)."""
        self._stopping = True
        self._poke()

    async def drain(self, grace_s: float) -> int:
        """Let in-flight jobs finish for ``grace_s``, then cancel the rest; returns how many
        were cancelled."""
        self.stop()
        if not self._tasks:
            return 0
        _done, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        return len(pending)
