"""The batched writer: one transaction per batch, buffering while the database is away."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from pop3watch.engine.writer import ResultWriter
from pop3watch.errors import StorageError
from pop3watch.model import MonitorState, MonitorStatus, Transition
from pop3watch.storage.records import BatchOutcome, StatusUpdate, StoredResult, WriteBatch

NOW = datetime(2026, 11, 23, tzinfo=UTC)


class FlakySink:
    """Fails while ``down`` is set; records every batch it accepted."""

    def __init__(self) -> None:
        self.down = False
        self.batches: list[WriteBatch] = []
        self.attempts = 0

    async def write_batch(self, batch: WriteBatch) -> BatchOutcome:
        self.attempts += 1
        if self.down:
            raise StorageError("database is locked")
        self.batches.append(batch)
        return BatchOutcome(len(batch.results), len(batch.transitions), [])


def result(monitor_id: int, n: int) -> StoredResult:
    return StoredResult(monitor_id=monitor_id, started_at=NOW, status="up", rtt_ms=float(n))


def status(version: int) -> MonitorStatus:
    return MonitorStatus(state=MonitorState.UP, version=version)


def transition(monitor_id: int) -> Transition:
    return Transition(monitor_id, NOW, MonitorState.UP, MonitorState.WARN, "timeout", "slow")


async def test_one_batch_holds_everything_and_statuses_coalesce() -> None:
    sink = FlakySink()
    writer = ResultWriter(sink)
    for v in range(1, 4):
        writer.submit(result=result(1, v), status=StatusUpdate(1, v - 1, status(v)))
    assert await writer.flush()
    (batch,) = sink.batches
    assert [r.rtt_ms for r in batch.results] == [1.0, 2.0, 3.0]
    assert batch.statuses == [StatusUpdate(1, 0, status(3))]
    assert writer.buffered == 0


async def test_buffers_while_down_and_writes_everything_when_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = FlakySink()
    sink.down = True
    writer = ResultWriter(sink)
    writer.submit(
        result=result(1, 1), status=StatusUpdate(1, 4, status(5)), transition=transition(1)
    )
    assert not await writer.flush()
    assert not writer.healthy
    writer.submit(result=result(1, 2), status=StatusUpdate(1, 5, status(6)))
    assert writer.buffered == 4
    assert "database unavailable" in caplog.text
    sink.down = False
    assert await writer.flush()
    (batch,) = sink.batches
    assert [r.rtt_ms for r in batch.results] == [1.0, 2.0]
    assert batch.statuses == [StatusUpdate(1, 4, status(6))]
    assert batch.transitions == [transition(1)]
    assert "database is back" in caplog.text


async def test_buffer_limit_drops_oldest_results_but_never_transitions() -> None:
    sink = FlakySink()
    sink.down = True
    writer = ResultWriter(sink, buffer_limit=3)
    for n in range(10):
        writer.submit(result=result(1, n), transition=transition(1))
    assert writer.stats.dropped_results == 7
    sink.down = False
    assert await writer.flush()
    assert [r.rtt_ms for r in sink.batches[0].results] == [7.0, 8.0, 9.0]
    assert len(sink.batches[0].transitions) == 10


async def test_transitions_are_flushed_at_once() -> None:
    sink = FlakySink()
    writer = ResultWriter(sink, flush_interval_s=60)
    task = asyncio.create_task(writer.run())
    await asyncio.sleep(0.01)
    writer.submit(transition=transition(2))
    for _ in range(100):
        if sink.batches:
            break
        await asyncio.sleep(0.01)
    assert sink.batches[0].transitions == [transition(2)]
    await writer.close(grace_s=1)
    await task


async def test_close_reports_what_could_not_be_written() -> None:
    sink = FlakySink()
    sink.down = True
    writer = ResultWriter(sink)
    writer.submit(result=result(1, 1))
    assert await writer.close(grace_s=0.2) == 1
    assert sink.attempts >= 1


async def test_an_unexpected_error_keeps_the_batch(caplog: pytest.LogCaptureFixture) -> None:
    class BuggySink(FlakySink):
        async def write_batch(self, batch: WriteBatch) -> BatchOutcome:
            if not self.batches and self.attempts == 0:
                self.attempts += 1
                raise ValueError("bug")
            return await super().write_batch(batch)

    sink = BuggySink()
    writer = ResultWriter(sink)
    writer.submit(result=result(1, 1), transition=transition(1))
    assert not await writer.flush()
    assert "failed unexpectedly" in caplog.text
    assert await writer.flush()
    assert [r.rtt_ms for r in sink.batches[0].results] == [1.0]
    assert sink.batches[0].transitions == [transition(1)]
