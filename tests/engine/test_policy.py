"""The monitor state machine, row by row, and whole outages played through it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pop3watch.engine.policy import (
    TABLE,
    AlertPolicy,
    Context,
    Event,
    Intervals,
    Outcome,
    classify,
    decide,
    next_interval,
    pause,
)
from pop3watch.model import AlertKind, MonitorState, MonitorStatus

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = AlertPolicy(failures_before_alert=3, max_alerts=2)
UP = Outcome("up")
WARN = Outcome("warn", "slow_response", "slow")
DOWN = Outcome("down", "connect_failed", "refused")


def status(
    state: MonitorState, failures: int = 0, alerts: int = 0, last: str | None = None
) -> MonitorStatus:
    return MonitorStatus(
        state=state,
        since=T0,
        consecutive_failures=failures,
        alerts_sent=alerts,
        last_result_status=last,
    )


# (previous status, outcome, context) -> (event, new state, alert, failures after, alerts after)
ROWS = [
    (status(MonitorState.UNKNOWN), UP, Context(), Event.PASS, MonitorState.UP, None, 0, 0),
    (status(MonitorState.UP, last="up"), UP, Context(), Event.PASS, MonitorState.UP, None, 0, 0),
    (
        status(MonitorState.UP, last="up"),
        WARN,
        Context(),
        Event.WARNING,
        MonitorState.WARN,
        AlertKind.WARN,
        0,
        0,
    ),
    (
        status(MonitorState.WARN, last="warn"),
        WARN,
        Context(),
        Event.WARNING_AGAIN,
        MonitorState.WARN,
        None,
        0,
        0,
    ),
    (
        status(MonitorState.WARN, 1, last="down"),
        WARN,
        Context(),
        Event.WARNING,
        MonitorState.WARN,
        AlertKind.WARN,
        0,
        0,
    ),
    (
        status(MonitorState.UP, last="up"),
        DOWN,
        Context(),
        Event.FAIL_SOFT,
        MonitorState.WARN,
        None,
        1,
        0,
    ),
    (
        status(MonitorState.WARN, 1, last="down"),
        DOWN,
        Context(),
        Event.FAIL_SOFT,
        MonitorState.WARN,
        None,
        2,
        0,
    ),
    (
        status(MonitorState.WARN, 2, last="down"),
        DOWN,
        Context(),
        Event.FAIL_ALERT,
        MonitorState.DOWN,
        AlertKind.DOWN,
        3,
        1,
    ),
    (
        status(MonitorState.DOWN, 3, 1, "down"),
        DOWN,
        Context(),
        Event.FAIL_HOLD,
        MonitorState.DOWN,
        None,
        4,
        1,
    ),
    (
        status(MonitorState.DOWN, 5, 1, "down"),
        DOWN,
        Context(),
        Event.FAIL_LAST_ALERT,
        MonitorState.LOST,
        AlertKind.DOWN,
        6,
        2,
    ),
    (
        status(MonitorState.LOST, 6, 2, "down"),
        DOWN,
        Context(),
        Event.FAIL_HOLD,
        MonitorState.LOST,
        None,
        7,
        2,
    ),
    (
        status(MonitorState.LOST, 8, 2, "down"),
        DOWN,
        Context(),
        Event.FAIL_HOLD,
        MonitorState.LOST,
        None,
        9,
        2,
    ),
    (
        status(MonitorState.DOWN, 3, 1, "down"),
        UP,
        Context(),
        Event.RECOVERED,
        MonitorState.UP,
        AlertKind.RECOVERY,
        0,
        0,
    ),
    (
        status(MonitorState.LOST, 9, 2, "down"),
        UP,
        Context(),
        Event.RECOVERED,
        MonitorState.UP,
        AlertKind.RECOVERY,
        0,
        0,
    ),
    (
        status(MonitorState.DOWN, 3, 1, "down"),
        WARN,
        Context(),
        Event.RECOVERED_WARNING,
        MonitorState.WARN,
        AlertKind.RECOVERY,
        0,
        0,
    ),
    (
        status(MonitorState.WARN, 2, last="down"),
        UP,
        Context(),
        Event.PASS,
        MonitorState.UP,
        None,
        0,
        0,
    ),
    (
        status(MonitorState.UP),
        DOWN,
        Context(in_maintenance=True),
        Event.MAINTENANCE,
        MonitorState.MAINTENANCE,
        None,
        0,
        0,
    ),
    (
        status(MonitorState.DOWN, 3, 1),
        DOWN,
        Context(in_maintenance=True),
        Event.MAINTENANCE,
        MonitorState.MAINTENANCE,
        None,
        0,
        1,
    ),
    (
        status(MonitorState.MAINTENANCE, 0, 1),
        UP,
        Context(),
        Event.RECOVERED,
        MonitorState.UP,
        AlertKind.RECOVERY,
        0,
        0,
    ),
    (status(MonitorState.MAINTENANCE), UP, Context(), Event.PASS, MonitorState.UP, None, 0, 0),
    (
        status(MonitorState.UP),
        DOWN,
        Context(parent_failing=True),
        Event.UNREACHABLE,
        MonitorState.UNREACHABLE,
        None,
        0,
        0,
    ),
    (
        status(MonitorState.WARN, 2, last="down"),
        DOWN,
        Context(parent_failing=True),
        Event.UNREACHABLE,
        MonitorState.UNREACHABLE,
        None,
        0,
        0,
    ),
    (
        status(MonitorState.UNREACHABLE),
        UP,
        Context(parent_failing=True),
        Event.PASS,
        MonitorState.UP,
        None,
        0,
        0,
    ),
    (status(MonitorState.PAUSED), DOWN, Context(), Event.FAIL_SOFT, MonitorState.WARN, None, 1, 0),
    # A failure before a parent's first verdict is held: no state change, no alert, even
    # with failures_before_alert reached at once.
    (
        status(MonitorState.UNKNOWN),
        DOWN,
        Context(parent_unknown=True),
        Event.FAIL_AWAITING_PARENT,
        MonitorState.UNKNOWN,
        None,
        0,
        0,
    ),
    # A failing parent wins over an unknown one.
    (
        status(MonitorState.UNKNOWN),
        DOWN,
        Context(parent_failing=True, parent_unknown=True),
        Event.UNREACHABLE,
        MonitorState.UNREACHABLE,
        None,
        0,
        0,
    ),
    # Passing needs no parent.
    (
        status(MonitorState.UNKNOWN),
        UP,
        Context(parent_unknown=True),
        Event.PASS,
        MonitorState.UP,
        None,
        0,
        0,
    ),
]


@pytest.mark.parametrize(
    ("prev", "outcome", "context", "event", "state", "alert", "failures", "alerts"), ROWS
)
def test_row(
    prev: MonitorStatus,
    outcome: Outcome,
    context: Context,
    event: Event,
    state: MonitorState,
    alert: AlertKind | None,
    failures: int,
    alerts: int,
) -> None:
    decision = decide(
        prev, outcome, monitor_id=7, policy=POLICY, context=context, now=T0 + timedelta(minutes=1)
    )
    assert decision.event is event
    assert decision.status.state is state
    assert decision.status.consecutive_failures == failures
    assert decision.status.alerts_sent == alerts
    assert decision.status.version == prev.version + 1
    changed = state is not prev.state
    if changed or alert is not None:
        assert decision.transition is not None
        assert decision.transition.alert is alert
        assert (decision.transition.from_state, decision.transition.to_state) == (prev.state, state)
        assert decision.transition.monitor_id == 7
    else:
        assert decision.transition is None
    if alert is AlertKind.DOWN:
        assert decision.transition is not None
        assert decision.transition.alert_seq == alerts


def test_every_event_has_a_row() -> None:
    assert set(TABLE) == set(Event)


def test_since_changes_only_with_the_state() -> None:
    prev = status(MonitorState.DOWN, 3, 1, "down")
    held = decide(
        prev, DOWN, monitor_id=1, policy=POLICY, context=Context(), now=T0 + timedelta(hours=1)
    )
    assert held.status.since == T0
    back = decide(
        prev, UP, monitor_id=1, policy=POLICY, context=Context(), now=T0 + timedelta(hours=1)
    )
    assert back.status.since == T0 + timedelta(hours=1)


def play(
    outcomes: list[Outcome], policy: AlertPolicy
) -> tuple[list[MonitorState], list[tuple[AlertKind, int | None]]]:
    current = MonitorStatus()
    states, alerts = [], []
    for i, outcome in enumerate(outcomes):
        d = decide(
            current,
            outcome,
            monitor_id=1,
            policy=policy,
            context=Context(),
            now=T0 + timedelta(seconds=30 * i),
        )
        current = d.status
        states.append(current.state)
        if d.transition is not None and d.transition.alert is not None:
            alerts.append((d.transition.alert, d.transition.alert_seq))
    return states, alerts


def test_an_outage_alerts_at_each_threshold_multiple_then_goes_lost() -> None:
    states, alerts = play(
        [UP] + [DOWN] * 20 + [UP], AlertPolicy(failures_before_alert=3, max_alerts=3)
    )
    assert states[:4] == [MonitorState.UP, MonitorState.WARN, MonitorState.WARN, MonitorState.DOWN]
    assert states[9] is MonitorState.LOST  # ninth failure: third alert
    assert states[-2] is MonitorState.LOST
    assert states[-1] is MonitorState.UP
    assert alerts == [
        (AlertKind.DOWN, 1),
        (AlertKind.DOWN, 2),
        (AlertKind.DOWN, 3),
        (AlertKind.RECOVERY, None),
    ]


def test_a_blip_below_the_threshold_raises_nothing() -> None:
    states, alerts = play(
        [UP, DOWN, DOWN, UP, DOWN, UP], AlertPolicy(failures_before_alert=3, max_alerts=5)
    )
    assert alerts == []
    assert MonitorState.DOWN not in states


@pytest.mark.parametrize(
    ("prev", "expected"),
    [
        (status(MonitorState.UP, last="up"), 60),
        (status(MonitorState.WARN, last="warn"), 60),
        (status(MonitorState.WARN, 1, last="down"), 30),
        (status(MonitorState.DOWN, 3, 1, "down"), 30),
        (status(MonitorState.LOST, 9, 2, "down"), 300),
    ],
)
def test_next_interval(prev: MonitorStatus, expected: float) -> None:
    assert next_interval(prev, Intervals(up=60, down=30, lost=300)) == expected


def test_pause_records_one_transition() -> None:
    first = pause(status(MonitorState.UP), monitor_id=1, now=T0)
    assert first.status.state is MonitorState.PAUSED
    assert first.transition is not None
    assert first.transition.alert is None
    again = pause(first.status, monitor_id=1, now=T0)
    assert again.transition is None


def test_paused_since_survives_a_restart() -> None:
    """The service pauses disabled monitors at every start: "since" stays the first."""
    first = pause(status(MonitorState.UP), monitor_id=1, now=T0)
    later = pause(first.status, monitor_id=1, now=T0 + timedelta(days=3))
    assert later.status.since == first.status.since == T0


def test_classify_lost_never_alerts_again() -> None:
    lost = status(MonitorState.LOST, 2, 2, "down")
    assert classify(lost, DOWN, AlertPolicy(1, 2), Context()) is Event.FAIL_HOLD
