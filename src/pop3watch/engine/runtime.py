"""A monitor as the engine runs it: its check, policy, intervals, parents, windows, status.

Job: flatten a configured monitor into what each check needs, once, so the hot path only
reads attributes. Rule: built from config models, never from raw dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel

from pop3watch.config import Pop3Monitor, TcpMonitor
from pop3watch.engine.policy import AlertPolicy, Intervals
from pop3watch.model import MonitorState, MonitorStatus


class Window(Protocol):
    def active(self, at: datetime) -> bool: ...


#: A parent in one of these states makes its failing children "unreachable".
PARENT_FAILING = frozenset({MonitorState.DOWN, MonitorState.LOST, MonitorState.UNREACHABLE})


@dataclass
class MonitorRuntime:
    id: int
    name: str
    probe: str
    settings: BaseModel
    policy: AlertPolicy
    intervals: Intervals
    parents: tuple[int, ...] = ()
    windows: Sequence[Window] = ()
    enabled: bool = True
    store_statistics: bool = True
    status: MonitorStatus = field(default_factory=MonitorStatus)
    #: Monotonic time after which an unchanged status is stored again anyway.
    refresh_due: float = float("-inf")

    @classmethod
    def from_config(
        cls, monitor: Pop3Monitor | TcpMonitor, ids: Mapping[str, int]
    ) -> MonitorRuntime:
        return cls(
            id=ids[monitor.name],
            name=monitor.name,
            probe=monitor.type,
            settings=monitor.check_settings(),
            policy=AlertPolicy(monitor.failures_before_alert, monitor.max_alerts),
            intervals=Intervals(monitor.interval_up, monitor.interval_down, monitor.interval_lost),
            parents=tuple(ids[name] for name in monitor.depends_on),
            windows=tuple(monitor.maintenance),
            enabled=monitor.enabled,
            store_statistics=monitor.store_statistics,
        )

    def in_maintenance(self, at: datetime) -> bool:
        return any(window.active(at) for window in self.windows)

    @property
    def failing_as_parent(self) -> bool:
        """Down, Lost, Unreachable, or already failing on its way to Down: children of a
        failing parent must not race it to an alert."""
        status = self.status
        return status.state in PARENT_FAILING or (
            status.state is MonitorState.WARN and status.last_result_status == "down"
        )
