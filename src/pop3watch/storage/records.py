"""The values the repository takes and returns.

Job: plain frozen data at the storage boundary, so callers never see a SQLAlchemy row.
Rule: every ``datetime`` here is timezone-aware UTC; the engine converts ``CheckResult``
into ``StoredResult`` (storage never imports the probe).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pop3watch.model import MonitorStatus, Transition


@dataclass(frozen=True, slots=True)
class MonitorRecord:
    """A monitor as its source (the config file or the API) defines it."""

    name: str
    probe: str
    enabled: bool
    config: dict[str, Any]  # JSON-safe; secrets only by reference (``password_env``)


@dataclass(frozen=True, slots=True)
class MonitorRow:
    """A stored monitor; ``deleted_at`` is set once its source stopped listing it."""

    id: int
    name: str
    probe: str
    source: str
    enabled: bool
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredResult:
    """One check result as stored. ``timings`` maps phase -> ms (None phases omitted on read)."""

    monitor_id: int
    started_at: datetime
    status: str  # "up" | "warn" | "down"
    error_code: str | None = None
    error_message: str | None = None
    error_phase: str | None = None
    rtt_ms: float | None = None
    timings: dict[str, float | None] = field(default_factory=dict)
    tls_days_left: int | None = None
    maintenance: bool = False
    address: str | None = None
    node: str | None = None
    transcript: list[dict[str, Any]] | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """Compare-and-swap of one monitor's status.

    Written only where the stored version equals ``expected_version`` (0: no row yet, insert);
    ``status.version`` must be greater than ``expected_version`` (usually by one; more
    when a buffered writer coalesced several updates).
    """

    monitor_id: int
    expected_version: int
    status: MonitorStatus


@dataclass
class WriteBatch:
    """Everything one engine tick wants stored, written in a single transaction."""

    results: list[StoredResult] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)


@dataclass(frozen=True)
class BatchOutcome:
    """What ``write_batch`` did.

    ``conflicts`` lists the monitors whose compare-and-swap failed: another writer won, so
    neither their status nor their transitions from this batch were written (their results,
    being observations, were).
    """

    results_written: int
    transitions_written: int
    conflicts: list[int]


@dataclass(frozen=True, slots=True)
class RollupRow:
    """One monitor in one UTC hour or day (``bucket`` is its start).

    Maintenance checks are not counted; response times are those of up and warn checks;
    ``rtt_p95`` is the exact nearest-rank p95 of the bucket.
    """

    monitor_id: int
    bucket: datetime
    count: int
    failures: int
    warnings: int
    rtt_count: int
    rtt_min: float | None
    rtt_max: float | None
    rtt_sum: float | None
    rtt_p95: float | None

    @property
    def rtt_avg(self) -> float | None:
        return None if not self.rtt_count or self.rtt_sum is None else self.rtt_sum / self.rtt_count


@dataclass(frozen=True)
class ReportRow:
    """One monitor over a period; see ``Storage.report`` for how each figure is derived."""

    monitor_id: int
    name: str
    checks: int
    failures: int
    warnings: int
    uptime_pct: float | None
    downtime_s: float
    incidents: int
    rtt_avg_ms: float | None
    rtt_p95_ms: float | None
    rtt_min_ms: float | None
    rtt_max_ms: float | None
