"""The engine: runs each due check, applies the policy, hands results to the writer.

Job: the check job the scheduler calls, and where each monitor starts after a restart.
Rules: the engine knows no protocol (the probe registry runs checks) and writes no SQL
(the writer and storage do). A bug in one check becomes that check's ``internal_error``
result; it never stops the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from pop3watch.engine.policy import Context, Decision, decide, next_interval, pause
from pop3watch.engine.records import outcome_of, stored_result
from pop3watch.engine.runtime import MonitorRuntime
from pop3watch.engine.scheduler import Clock, Scheduler, spread_offset
from pop3watch.engine.writer import ResultWriter
from pop3watch.errors import InternalError
from pop3watch.model import MonitorState, MonitorStatus
from pop3watch.probe.registry import run_probe
from pop3watch.probe.result import CheckResult
from pop3watch.storage.records import StatusUpdate

log = logging.getLogger(__name__)

ProbeRunner = Callable[[str, BaseModel], Awaitable[CheckResult]]

#: Monitors overdue after a restart start within this many seconds, spread out.
CATCH_UP_SPREAD_S = 30.0
#: A status that did not change materially is still stored this often, so the stored
#: schedule (``next_due_at``) and ``last_checked_at`` stay fresh for restarts and readers.
STATUS_REFRESH_S = 300.0


def material_change(before: MonitorStatus, after: MonitorStatus) -> bool:
    """Whether the policy's memory changed (what a restart must not lose)."""
    return (
        before.state is not after.state
        or before.consecutive_failures != after.consecutive_failures
        or before.alerts_sent != after.alerts_sent
        or before.last_result_status != after.last_result_status
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


class Engine:
    def __init__(
        self,
        monitors: list[MonitorRuntime],
        *,
        writer: ResultWriter,
        clock: Clock,
        concurrency: int,
        node: str | None = None,
        probe: ProbeRunner = run_probe,
        wall: Callable[[], datetime] = utc_now,
    ) -> None:
        self.monitors = {m.id: m for m in monitors}
        self.writer = writer
        self.clock = clock
        self.node = node
        self._probe = probe
        self._wall = wall
        self.scheduler = Scheduler(self._check, clock=clock, concurrency=concurrency)

    def start(self, statuses: dict[int, MonitorStatus]) -> None:
        """Restore stored statuses and schedule every enabled monitor.

        A stored ``next_due_at`` in the future is kept; overdue monitors start soon,
        spread over a few seconds; new monitors start at their spread offset.
        """
        now, mono = self._wall(), self.clock.monotonic()
        for monitor in self.monitors.values():
            monitor.status = statuses.get(monitor.id, MonitorStatus())
            if not monitor.enabled:
                self._record(monitor, pause(monitor.status, monitor_id=monitor.id, now=now))
                continue
            # Refreshes spread over the period, not 10,000 at once five minutes from now.
            monitor.refresh_due = mono + spread_offset(monitor.name, STATUS_REFRESH_S)
            stored = monitor.status.next_due_at
            if stored is None:
                due = mono + spread_offset(monitor.name, monitor.intervals.up)
            elif stored > now:
                due = mono + (stored - now).total_seconds()
            else:
                due = mono + spread_offset(
                    monitor.name, min(monitor.intervals.up, CATCH_UP_SPREAD_S)
                )
            self.scheduler.add(monitor.id, due)

    async def _run_probe(self, monitor: MonitorRuntime) -> CheckResult:
        try:
            return await self._probe(monitor.probe, monitor.settings)
        except Exception as exc:  # a bug, not a server fault: record it, keep going
            log.exception("check of %s raised", monitor.name)
            return CheckResult.failed(
                InternalError(type(exc).__name__),
                probe=monitor.probe,
                target="",
                started_at=self._wall(),
            )

    async def _check(self, monitor_id: int, due: float) -> float | None:
        monitor = self.monitors.get(monitor_id)
        if monitor is None or not monitor.enabled:
            return None
        result = await self._run_probe(monitor)
        now = self._wall()
        parents = [self.monitors[p] for p in monitor.parents if p in self.monitors]
        context = Context(
            in_maintenance=monitor.in_maintenance(now),
            parent_failing=any(parent.failing_as_parent for parent in parents),
            parent_unknown=any(
                parent.enabled and parent.status.state is MonitorState.UNKNOWN for parent in parents
            ),
        )
        decision = decide(
            monitor.status,
            outcome_of(result),
            monitor_id=monitor.id,
            policy=monitor.policy,
            context=context,
            now=now,
        )
        mono = self.clock.monotonic()
        next_due = max(due + next_interval(decision.status, monitor.intervals), mono)
        status = decision.status.evolve(next_due_at=now + timedelta(seconds=next_due - mono))
        stored = None
        if monitor.store_statistics:
            stored = stored_result(
                result, monitor_id=monitor.id, maintenance=context.in_maintenance, node=self.node
            )
        update = None
        if (
            decision.transition is not None
            or material_change(monitor.status, status)
            or mono >= monitor.refresh_due
        ):
            update = StatusUpdate(monitor.id, monitor.status.version, status)
            monitor.refresh_due = mono + STATUS_REFRESH_S
        else:
            # Nothing the policy remembers changed: keep the stored version (no write).
            status = status.evolve(version=monitor.status.version)
        self.writer.submit(result=stored, status=update, transition=decision.transition)
        if decision.transition is not None:
            t = decision.transition
            log.info(
                "%s: %s -> %s%s (%s)",
                monitor.name,
                t.from_state.value,
                t.to_state.value,
                f", alert {t.alert.value}" if t.alert else "",
                t.reason_code or t.reason_message,
            )
        monitor.status = status
        return next_due

    def _record(self, monitor: MonitorRuntime, decision: Decision) -> None:
        self.writer.submit(
            status=StatusUpdate(monitor.id, monitor.status.version, decision.status),
            transition=decision.transition,
        )
        monitor.status = decision.status
