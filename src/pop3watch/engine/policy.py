"""The monitor state machine: a pure function of (status, result, policy, context, now).

Job: decide the next state, whether an alert is due, and which transition row to append.
Rules (ipMonitor's model):
- Up: the last test passed. Warn: passed with a warning, or failing with fewer consecutive
  failures than ``failures_before_alert``. Down: failures reached the threshold; a failure
  alert is due at every multiple of it. Lost: ``max_alerts`` alerts were raised; silent
  until it recovers, then one recovery notice.
- Maintenance and Unreachable (a parent is failing) record results but never alert.
- A failure before a parent's first check is held (no state change, not counted): at
  start-up a child must not race its parent to an alert. It is checked again at the
  Down interval, by when the parent has a verdict.
The rules are a table of rows (``TABLE``) so they can be tested and read one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Final

from pop3watch.model import AlertKind, MonitorState, MonitorStatus, Transition


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    failures_before_alert: int = 3
    max_alerts: int = 5


@dataclass(frozen=True, slots=True)
class Intervals:
    """Seconds between checks, per state (ipMonitor's "test intervals")."""

    up: float = 60.0
    down: float = 30.0
    lost: float = 300.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the policy needs of a check result."""

    status: str  # "up" | "warn" | "down"
    code: str | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class Context:
    in_maintenance: bool = False
    parent_failing: bool = False
    #: A parent has not been checked yet (the service just started): its child's failure
    #: may well be the parent's, so it waits for the parent's first verdict.
    parent_unknown: bool = False


class Event(Enum):
    """A result, classified against the monitor's counters."""

    PASS = "pass"  # noqa: S105 - an event name, not a password
    RECOVERED = "recovered"  # passed after at least one failure alert
    WARNING = "warning"  # passed with a new warning (slow, certificate, mailbox)
    WARNING_AGAIN = "warning_again"  # the same warning as last time
    RECOVERED_WARNING = "recovered_warning"  # passed with a warning after failure alerts
    FAIL_SOFT = "fail_soft"  # failed, fewer than failures_before_alert in a row
    FAIL_ALERT = "fail_alert"  # failed, and the count is a multiple of the threshold
    FAIL_LAST_ALERT = "fail_last_alert"  # ... and this alert is the max_alerts-th
    FAIL_HOLD = "fail_hold"  # failed between two alert points, or while Lost
    MAINTENANCE = "maintenance"  # inside a maintenance window, whatever the result
    UNREACHABLE = "unreachable"  # failed while a parent is failing
    FAIL_AWAITING_PARENT = "fail_awaiting_parent"  # failed before a parent's first check


FAILURES: Final = frozenset(
    {Event.FAIL_SOFT, Event.FAIL_ALERT, Event.FAIL_LAST_ALERT, Event.FAIL_HOLD}
)
PASSES: Final = frozenset(
    {Event.PASS, Event.RECOVERED, Event.WARNING, Event.WARNING_AGAIN, Event.RECOVERED_WARNING}
)

#: event -> (state it leads to, None to stay; the alert it raises, if any)
TABLE: Final[dict[Event, tuple[MonitorState | None, AlertKind | None]]] = {
    Event.PASS: (MonitorState.UP, None),
    Event.RECOVERED: (MonitorState.UP, AlertKind.RECOVERY),
    Event.WARNING: (MonitorState.WARN, AlertKind.WARN),
    Event.WARNING_AGAIN: (MonitorState.WARN, None),
    Event.RECOVERED_WARNING: (MonitorState.WARN, AlertKind.RECOVERY),
    Event.FAIL_SOFT: (MonitorState.WARN, None),
    Event.FAIL_ALERT: (MonitorState.DOWN, AlertKind.DOWN),
    Event.FAIL_LAST_ALERT: (MonitorState.LOST, AlertKind.DOWN),
    Event.FAIL_HOLD: (None, None),
    Event.MAINTENANCE: (MonitorState.MAINTENANCE, None),
    Event.UNREACHABLE: (MonitorState.UNREACHABLE, None),
    Event.FAIL_AWAITING_PARENT: (None, None),
}


@dataclass(frozen=True, slots=True)
class Decision:
    status: MonitorStatus
    transition: Transition | None
    event: Event


def classify(prev: MonitorStatus, outcome: Outcome, policy: AlertPolicy, context: Context) -> Event:
    """Which row of the table a result selects."""
    if context.in_maintenance:
        return Event.MAINTENANCE
    if outcome.status == "up":
        return Event.RECOVERED if prev.alerts_sent else Event.PASS
    if outcome.status == "warn":
        if prev.alerts_sent:
            return Event.RECOVERED_WARNING
        same = prev.state is MonitorState.WARN and prev.last_result_status == "warn"
        return Event.WARNING_AGAIN if same else Event.WARNING
    if context.parent_failing:
        return Event.UNREACHABLE
    if context.parent_unknown:
        return Event.FAIL_AWAITING_PARENT
    if prev.state is MonitorState.LOST:
        return Event.FAIL_HOLD
    failures = prev.consecutive_failures + 1
    threshold = policy.failures_before_alert
    if failures < threshold:
        return Event.FAIL_SOFT
    if failures % threshold:
        return Event.FAIL_HOLD
    if prev.alerts_sent + 1 >= policy.max_alerts:
        return Event.FAIL_LAST_ALERT
    return Event.FAIL_ALERT


def decide(
    prev: MonitorStatus,
    outcome: Outcome,
    *,
    monitor_id: int,
    policy: AlertPolicy,
    context: Context,
    now: datetime,
) -> Decision:
    """The next status and, when something happened, the transition row to append.

    A row is appended when the state changes or an alert is due (a repeated failure
    alert while Down is a Down -> Down row). Maintenance and Unreachable reset the
    failure count but remember alerts already raised, so a recovery is still announced.
    """
    event = classify(prev, outcome, policy, context)
    to_state, alert = TABLE[event]
    new_state = to_state or prev.state
    alerts_sent = 0 if event in PASSES else prev.alerts_sent + (alert is AlertKind.DOWN)
    status = prev.evolve(
        state=new_state,
        since=now if new_state is not prev.state or prev.since is None else prev.since,
        consecutive_failures=prev.consecutive_failures + 1 if event in FAILURES else 0,
        alerts_sent=alerts_sent,
        last_result_status=outcome.status,
        last_checked_at=now,
        version=prev.version + 1,
    )
    transition = None
    if new_state is not prev.state or alert is not None:
        transition = Transition(
            monitor_id=monitor_id,
            at=now,
            from_state=prev.state,
            to_state=new_state,
            reason_code=outcome.code,
            reason_message=outcome.message or _default_reason(event),
            alert=alert,
            alert_seq=alerts_sent if alert is AlertKind.DOWN else None,
        )
    return Decision(status, transition, event)


def _default_reason(event: Event) -> str:
    return {
        Event.PASS: "check passed",
        Event.RECOVERED: "check passed",
        Event.MAINTENANCE: "inside a maintenance window",
        Event.UNREACHABLE: "a monitor it depends on is failing",
    }.get(event, event.value.replace("_", " "))


def pause(prev: MonitorStatus, *, monitor_id: int, now: datetime) -> Decision:
    """The monitor was disabled: Paused, with a transition (no alert)."""
    already = prev.state is MonitorState.PAUSED and prev.since is not None
    status = prev.evolve(
        state=MonitorState.PAUSED,
        since=prev.since if already else now,  # paused since then, across restarts
        consecutive_failures=0,
        version=prev.version + 1,
    )
    transition = None
    if prev.state is not MonitorState.PAUSED:
        transition = Transition(
            monitor_id, now, prev.state, MonitorState.PAUSED, None, "monitor disabled"
        )
    return Decision(status, transition, Event.MAINTENANCE)


def next_interval(status: MonitorStatus, intervals: Intervals) -> float:
    """Seconds until the next check: faster while failing, slow once Lost."""
    if status.state is MonitorState.LOST:
        return intervals.lost
    if status.state is MonitorState.DOWN or status.last_result_status == "down":
        return intervals.down
    return intervals.up
