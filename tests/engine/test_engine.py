"""The engine's check job with a fake probe and clock: what it hands the writer."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel

from pop3watch.engine.engine import STATUS_REFRESH_S, Engine
from pop3watch.engine.policy import AlertPolicy, Intervals
from pop3watch.engine.runtime import MonitorRuntime
from pop3watch.engine.writer import ResultWriter
from pop3watch.model import AlertKind, MonitorState
from pop3watch.probe.result import CheckResult, ErrorInfo, Status
from pop3watch.probe.settings import TcpSettings
from pop3watch.storage.records import BatchOutcome, WriteBatch
from tests.engine.fakeclock import FakeClock

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


class Sink:
    def __init__(self) -> None:
        self.batches: list[WriteBatch] = []

    async def write_batch(self, batch: WriteBatch) -> BatchOutcome:
        self.batches.append(batch)
        return BatchOutcome(len(batch.results), len(batch.transitions), [])


def make(outcomes: list[Status]) -> tuple[Engine, Sink, FakeClock]:
    queue = list(outcomes)

    async def probe(kind: str, settings: BaseModel) -> CheckResult:
        status = queue.pop(0)
        error = (
            None
            if status is Status.UP
            else ErrorInfo(code="connect_failed", message="refused", phase="connect")
        )
        return CheckResult(status=status, error=error, started_at=NOW, target="x:1")

    sink = Sink()
    clock = FakeClock()
    runtime = MonitorRuntime(
        id=1,
        name="m",
        probe="tcp",
        settings=TcpSettings(host="127.0.0.1", port=1),
        policy=AlertPolicy(failures_before_alert=2, max_alerts=3),
        intervals=Intervals(up=10, down=10, lost=10),
    )
    engine = Engine(
        [runtime],
        writer=ResultWriter(sink),
        clock=clock,
        concurrency=1,
        probe=probe,
        wall=lambda: NOW,
    )
    return engine, sink, clock


async def test_unchanged_statuses_are_not_rewritten_but_results_are() -> None:
    engine, sink, clock = make([Status.UP] * 4 + [Status.DOWN])
    monitor = engine.monitors[1]
    for _ in range(4):
        await engine._check(1, clock.monotonic())
    await engine.writer.flush()
    batch = sink.batches[-1]
    assert len(batch.results) == 4
    assert [u.status.version for u in batch.statuses] == [1]  # only the first (unknown -> up)
    assert monitor.status.version == 1
    await engine._check(1, clock.monotonic())  # a failure changes the counters: written
    await engine.writer.flush()
    (update,) = sink.batches[-1].statuses
    assert (update.expected_version, update.status.version) == (1, 2)
    assert update.status.state is MonitorState.WARN


async def test_an_unchanged_status_is_refreshed_after_a_while() -> None:
    engine, sink, clock = make([Status.UP] * 3)
    await engine._check(1, clock.monotonic())
    await engine._check(1, clock.monotonic())
    await clock.advance(STATUS_REFRESH_S + 1)
    await engine._check(1, clock.monotonic())
    await engine.writer.flush()
    versions = [u.status.version for b in sink.batches for u in b.statuses]
    assert versions == [2]  # the first and the refresh, coalesced into one update...
    assert sink.batches[-1].statuses[0].expected_version == 0  # ...from the stored version
    assert engine.monitors[1].status.next_due_at is not None


async def test_a_child_does_not_race_its_unchecked_parent_to_an_alert() -> None:
    """At start-up the child may be checked first. Its failure waits for the parent's
    verdict: once the parent is down, the child is unreachable, and never alerted."""

    async def probe(kind: str, settings: BaseModel) -> CheckResult:
        error = ErrorInfo(code="connect_failed", message="refused", phase="connect")
        return CheckResult(status=Status.DOWN, error=error, started_at=NOW, target="x:1")

    def monitor(monitor_id: int, name: str, parents: tuple[int, ...] = ()) -> MonitorRuntime:
        return MonitorRuntime(
            id=monitor_id,
            name=name,
            probe="tcp",
            settings=TcpSettings(host="127.0.0.1", port=1),
            policy=AlertPolicy(failures_before_alert=1, max_alerts=3),
            intervals=Intervals(up=10, down=10, lost=10),
            parents=parents,
        )

    sink = Sink()
    clock = FakeClock()
    engine = Engine(
        [monitor(1, "parent"), monitor(2, "child", parents=(1,))],
        writer=ResultWriter(sink),
        clock=clock,
        concurrency=1,
        probe=probe,
        wall=lambda: NOW,
    )
    await engine._check(2, clock.monotonic())  # the child first: its parent is unknown
    assert engine.monitors[2].status.state is MonitorState.UNKNOWN
    await engine._check(1, clock.monotonic())
    await engine._check(2, clock.monotonic())
    await engine.writer.flush()
    transitions = [t for batch in sink.batches for t in batch.transitions]
    child = [(t.to_state, t.alert) for t in transitions if t.monitor_id == 2]
    assert child == [(MonitorState.UNREACHABLE, None)]
    parent_alerts = [t.alert for t in transitions if t.monitor_id == 1]
    assert parent_alerts == [AlertKind.DOWN]
