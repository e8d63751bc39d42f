"""What counts as a check, a failure and a response time, in one place.

Job: the scoring rules shared by rollups, uptime and reports. Rule: pure Python, no I/O.

- A check in a maintenance window is not scored at all: it does not count as a check, a
  failure or a response time, so planned work never spends the uptime budget.
- A failure is a ``down`` result; ``warn`` counts as up (and as a warning).
- Response times come from ``up`` and ``warn`` results only: the "response time" of a failed
  check mostly measures the timeout, and would drown the service's real latency.
- p95 is the nearest-rank percentile: the smallest value with at least 95 % of the values at
  or below it, i.e. the ``ceil(0.95 * n)``-th smallest. It is always an observed value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pop3watch.percentiles import nearest_rank

P95 = 95


class NearestRankAggregate:
    """SQLite aggregate ``pop3watch_p95(x)``: the nearest-rank p95 of the non-NULL values.

    SQLite has no percentile function; PostgreSQL's ``percentile_disc(0.95)`` computes the
    same thing. Registered on every SQLite connection by ``engine``. ``step`` is the list's
    own ``append`` (a C call per row, no Python frame): NULLs are dropped at the end.
    """

    __slots__ = ("step", "values")

    def __init__(self) -> None:
        self.values: list[float | None] = []
        self.step = self.values.append

    def finalize(self) -> float | None:
        values = [value for value in self.values if value is not None]
        values.sort()
        return nearest_rank(values)


def scores_rtt(status: str) -> bool:
    return status != "down"


@dataclass
class Bucket:
    """Accumulates the results of one monitor in one hour or day."""

    count: int = 0
    failures: int = 0
    warnings: int = 0
    rtts: list[float] = field(default_factory=list)

    def add(self, status: str, rtt_ms: float | None, maintenance: bool) -> None:
        if maintenance:
            return
        self.count += 1
        if status == "down":
            self.failures += 1
        elif status == "warn":
            self.warnings += 1
        if rtt_ms is not None and scores_rtt(status):
            self.rtts.append(rtt_ms)

    def columns(self) -> dict[str, float | int | None]:
        """The rollup row's value columns."""
        values = sorted(self.rtts)
        return {
            "count": self.count,
            "failures": self.failures,
            "warnings": self.warnings,
            "rtt_count": len(values),
            "rtt_min": values[0] if values else None,
            "rtt_max": values[-1] if values else None,
            "rtt_sum": sum(values) if values else None,
            "rtt_p95": nearest_rank(values),
        }


@dataclass
class Totals:
    """Sums over several buckets of one monitor, as the report and uptime combine them.

    ``p95_weighted`` is the sum of bucket p95 times bucket rtt_count: the report's p95 is
    the count-weighted mean of bucket p95s (see ``Storage.report``).
    """

    count: int = 0
    failures: int = 0
    warnings: int = 0
    rtt_count: int = 0
    rtt_sum: float = 0.0
    rtt_min: float | None = None
    rtt_max: float | None = None
    p95_weighted: float = 0.0

    def merge(
        self,
        count: int,
        failures: int,
        warnings: int,
        rtt_count: int,
        rtt_sum: float | None,
        rtt_min: float | None,
        rtt_max: float | None,
        p95_weighted: float | None,
    ) -> None:
        self.count += int(count or 0)
        self.failures += int(failures or 0)
        self.warnings += int(warnings or 0)
        self.rtt_count += int(rtt_count or 0)
        self.rtt_sum += float(rtt_sum or 0.0)
        self.p95_weighted += float(p95_weighted or 0.0)
        if rtt_min is not None:
            self.rtt_min = rtt_min if self.rtt_min is None else min(self.rtt_min, rtt_min)
        if rtt_max is not None:
            self.rtt_max = rtt_max if self.rtt_max is None else max(self.rtt_max, rtt_max)

    @property
    def uptime_pct(self) -> float | None:
        if self.count == 0:
            return None
        return (self.count - self.failures) / self.count * 100.0

    @property
    def rtt_avg(self) -> float | None:
        return self.rtt_sum / self.rtt_count if self.rtt_count else None

    @property
    def rtt_p95(self) -> float | None:
        return self.p95_weighted / self.rtt_count if self.rtt_count else None
