"""A fake monotonic clock with timers, so scheduler tests control time exactly."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable


class _Handle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._timers: list[tuple[float, int, _Handle, Callable[[], None]]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> _Handle:
        handle = _Handle()
        heapq.heappush(self._timers, (when, next(self._seq), handle, callback))
        return handle

    async def settle(self) -> None:
        for _ in range(20):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward, firing every timer on the way at its own instant."""
        target = self.now + seconds
        await self.settle()
        while self._timers and self._timers[0][0] <= target:
            when, _, handle, callback = heapq.heappop(self._timers)
            if handle.cancelled:
                continue
            self.now = max(self.now, when)
            callback()
            await self.settle()
        self.now = target
        await self.settle()
