"""Turn a probe's ``CheckResult`` into what the policy and storage need.

Rule: the only place that knows both vocabularies; a transcript is stored for failures
only (they need explaining; successes would only fill the disk).
"""

from __future__ import annotations

from pop3watch.engine.policy import Outcome
from pop3watch.probe.result import CheckResult, Status
from pop3watch.storage.records import StoredResult


def outcome_of(result: CheckResult) -> Outcome:
    if result.error is None:
        return Outcome(result.status.value)
    return Outcome(result.status.value, result.error.code, result.error.message)


def stored_result(
    result: CheckResult, *, monitor_id: int, maintenance: bool, node: str | None
) -> StoredResult:
    cert = result.tls.cert if result.tls else None
    failed = result.status is Status.DOWN
    return StoredResult(
        monitor_id=monitor_id,
        started_at=result.started_at,
        status=result.status.value,
        error_code=result.error.code if result.error else None,
        error_message=result.error.message if result.error else None,
        error_phase=result.error.phase if result.error else None,
        rtt_ms=result.rtt_ms,
        timings=result.timings_ms.model_dump(),
        tls_days_left=cert.days_left if cert else None,
        maintenance=maintenance,
        address=result.address,
        node=node,
        transcript=[line.model_dump() for line in result.transcript] if failed else None,
    )
