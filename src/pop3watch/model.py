"""Domain values shared by the engine and storage: monitor states, status, transitions.

Job: the nouns of the monitor service, as frozen data. Rule: no I/O and no policy here;
``engine.policy`` decides, ``storage`` persists, both speak these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum


class MonitorState(StrEnum):
    """The life cycle of a monitor (ipMonitor's Up/Warn/Down/Lost plus housekeeping)."""

    UNKNOWN = "unknown"  # no result yet
    UP = "up"  # last test passed
    WARN = "warn"  # passed with a warning, or failing below failures_before_alert
    DOWN = "down"  # failures reached the threshold; alerts are being raised
    LOST = "lost"  # max_alerts raised; silent until it recovers
    PAUSED = "paused"  # disabled
    MAINTENANCE = "maintenance"  # inside a maintenance window: checked, recorded, no alerts
    UNREACHABLE = "unreachable"  # a parent it depends on is down: no alerts

    @property
    def failing(self) -> bool:
        return self in (MonitorState.DOWN, MonitorState.LOST)


class AlertKind(StrEnum):
    """What the outbox asks the notifiers to say."""

    DOWN = "down"  # failure alert (the n-th of an outage is ``alert_seq`` n)
    RECOVERY = "recovery"  # back up after at least one failure alert
    WARN = "warn"  # entered a warning condition (slow, certificate expiring, mailbox)


@dataclass(frozen=True, slots=True)
class MonitorStatus:
    """Everything the policy needs to remember about one monitor between checks.

    ``version`` increases with every stored change; storage updates a status only where
    the stored version is the one this value was derived from (compare-and-swap).
    """

    state: MonitorState = MonitorState.UNKNOWN
    since: datetime | None = None
    consecutive_failures: int = 0
    alerts_sent: int = 0
    last_result_status: str | None = None  # "up" | "warn" | "down"
    last_checked_at: datetime | None = None
    next_due_at: datetime | None = None
    version: int = 0

    def evolve(self, **changes: object) -> MonitorStatus:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Transition:
    """One append-only row of the transitions table, which is also the alert outbox.

    A repeated failure alert while staying Down is a row with ``from_state == to_state``.
    """

    monitor_id: int
    at: datetime
    from_state: MonitorState
    to_state: MonitorState
    reason_code: str | None
    reason_message: str
    alert: AlertKind | None = None
    alert_seq: int | None = None
    id: int | None = None
    extra: dict[str, str] = field(default_factory=dict)
