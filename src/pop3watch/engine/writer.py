"""Batched, buffered writes of results, statuses and transitions.

Job: collect what the checks produce and write it in one transaction per batch. When the
database is locked or gone, keep everything in memory (results bounded by
``buffer_limit``, oldest dropped first and counted; statuses coalesce per monitor;
transitions are never dropped), keep retrying with backoff, and say so in the log.
Rule: transitions are flushed at once (the alert outbox must not wait for a timer).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from pop3watch.errors import StorageError
from pop3watch.model import Transition
from pop3watch.storage.records import BatchOutcome, StatusUpdate, StoredResult, WriteBatch

log = logging.getLogger(__name__)


class BatchSink(Protocol):
    async def write_batch(self, batch: WriteBatch) -> BatchOutcome: ...


@dataclass
class WriterStats:
    batches: int = 0
    results_written: int = 0
    transitions_written: int = 0
    failed_attempts: int = 0
    dropped_results: int = 0
    conflicts: int = 0


class ResultWriter:
    """Owns the queue between the checks and the database."""

    def __init__(
        self,
        sink: BatchSink,
        *,
        flush_interval_s: float = 0.5,
        buffer_limit: int = 100_000,
        max_batch: int = 5_000,
        retry_max_s: float = 30.0,
    ) -> None:
        self._sink = sink
        self._flush_interval = flush_interval_s
        self._buffer_limit = buffer_limit
        self._max_batch = max_batch
        self._retry_max = retry_max_s
        self._results: deque[StoredResult] = deque()
        self._statuses: dict[int, StatusUpdate] = {}
        self._transitions: list[Transition] = []
        self._urgent = asyncio.Event()
        self._closing = False
        self._healthy = True
        self._lock = asyncio.Lock()
        self.stats = WriterStats()

    @property
    def buffered(self) -> int:
        return len(self._results) + len(self._statuses) + len(self._transitions)

    @property
    def healthy(self) -> bool:
        """False while the last write attempt failed (the service is buffering)."""
        return self._healthy

    def submit(
        self,
        *,
        result: StoredResult | None = None,
        status: StatusUpdate | None = None,
        transition: Transition | None = None,
    ) -> None:
        """Queue what one check produced; never blocks, never raises."""
        if result is not None:
            self._results.append(result)
            while len(self._results) > self._buffer_limit:
                self._results.popleft()
                self.stats.dropped_results += 1
                if (
                    self.stats.dropped_results in (1, 100)
                    or self.stats.dropped_results % 10_000 == 0
                ):
                    log.error(
                        "result buffer full: %d results dropped so far", self.stats.dropped_results
                    )
        if status is not None:
            earlier = self._statuses.get(status.monitor_id)
            if earlier is not None:
                # Keep the version the database holds; store only the newest status.
                status = StatusUpdate(status.monitor_id, earlier.expected_version, status.status)
            self._statuses[status.monitor_id] = status
        if transition is not None:
            self._transitions.append(transition)
            self._urgent.set()
        elif len(self._results) >= self._max_batch:
            self._urgent.set()

    def _take(self) -> WriteBatch:
        count = min(len(self._results), self._max_batch)
        batch = WriteBatch(
            results=[self._results.popleft() for _ in range(count)],
            statuses=list(self._statuses.values()),
            transitions=self._transitions,
        )
        self._statuses = {}
        self._transitions = []
        return batch

    def _give_back(self, batch: WriteBatch) -> None:
        self._results.extendleft(reversed(batch.results))
        for update in batch.statuses:
            newer = self._statuses.get(update.monitor_id)
            self._statuses[update.monitor_id] = (
                update
                if newer is None
                else StatusUpdate(update.monitor_id, update.expected_version, newer.status)
            )
        self._transitions = batch.transitions + self._transitions

    async def flush(self) -> bool:
        """Write one batch; on failure put it back. Returns whether the write succeeded."""
        async with self._lock:
            if not self.buffered:
                return True
            batch = self._take()
            try:
                outcome = await self._sink.write_batch(batch)
            except StorageError as exc:
                self._give_back(batch)
                self.stats.failed_attempts += 1
                if self._healthy:
                    log.warning(
                        "database unavailable (%s); buffering results in memory", exc.message
                    )
                self._healthy = False
                return False
            except Exception:
                # A bug, not an outage: keep the data, say it loudly, retry with backoff.
                self._give_back(batch)
                self.stats.failed_attempts += 1
                log.exception("writing a batch failed unexpectedly; keeping it buffered")
                self._healthy = False
                return False
            if not self._healthy:
                log.warning(
                    "database is back; writing %d buffered items",
                    self.buffered + len(batch.results),
                )
            self._healthy = True
            self.stats.batches += 1
            self.stats.results_written += outcome.results_written
            self.stats.transitions_written += outcome.transitions_written
            if outcome.conflicts:
                self.stats.conflicts += len(outcome.conflicts)
                log.warning(
                    "status changed elsewhere for monitors %s; their transitions were not written",
                    outcome.conflicts,
                )
            return True

    async def run(self) -> None:
        """Flush every ``flush_interval_s`` (at once for transitions) until closed."""
        backoff = self._flush_interval
        while not self._closing:
            if self._healthy:
                try:
                    async with asyncio.timeout(backoff):
                        await self._urgent.wait()
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(backoff)  # back off even when transitions arrive
            self._urgent.clear()
            ok = await self.flush()
            while ok and len(self._results) >= self._max_batch:
                ok = await self.flush()
            backoff = self._flush_interval if ok else min(max(backoff * 2, 1.0), self._retry_max)

    async def close(self, grace_s: float = 10.0) -> int:
        """Stop the loop and write what is left, trying for ``grace_s``; returns what could
        not be written (lost on exit, and logged)."""
        self._closing = True
        self._urgent.set()
        try:
            async with asyncio.timeout(grace_s):
                while self.buffered:
                    if not await self.flush():
                        await asyncio.sleep(0.5)
        except TimeoutError:
            log.error(
                "shutting down with %d items not written within the shutdown bound", self.buffered
            )
        return self.buffered
