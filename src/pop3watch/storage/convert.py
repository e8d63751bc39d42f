"""Records to column values and rows back to records.

Job: the one mapping between the domain/record types and table columns, with validation.
Rule: validate before any SQL runs and raise ``ValueError`` for caller bugs (a naive
timestamp, an unknown status or timing key), so they never masquerade as ``StorageError``.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import RowMapping

from pop3watch.model import AlertKind, MonitorState, MonitorStatus, Transition
from pop3watch.storage.coltypes import as_utc, as_utc_opt
from pop3watch.storage.records import MonitorRow, StatusUpdate, StoredResult
from pop3watch.storage.schema import RESULT_STATUSES, TIMING_KEYS


def dump_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON-safe: {exc}") from exc


def load_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


# --- results --------------------------------------------------------------------------


def result_values(result: StoredResult) -> dict[str, Any]:
    if result.status not in RESULT_STATUSES:
        raise ValueError(f"result status must be one of {RESULT_STATUSES}, not {result.status!r}")
    unknown = set(result.timings) - set(TIMING_KEYS)
    if unknown:
        raise ValueError(f"unknown timing keys {sorted(unknown)}; known: {TIMING_KEYS}")
    values: dict[str, Any] = {
        "monitor_id": result.monitor_id,
        "started_at": as_utc(result.started_at, "StoredResult.started_at"),
        "status": result.status,
        "error_code": result.error_code,
        "error_message": result.error_message,
        "error_phase": result.error_phase,
        "rtt_ms": result.rtt_ms,
        "tls_days_left": result.tls_days_left,
        "maintenance": result.maintenance,
        "address": result.address,
        "node": result.node,
        "transcript": (
            None if result.transcript is None else dump_json(result.transcript, "transcript")
        ),
    }
    for key in TIMING_KEYS:
        values[f"t_{key}"] = result.timings.get(key)
    return values


def result_from_row(row: RowMapping) -> StoredResult:
    timings = {key: row[f"t_{key}"] for key in TIMING_KEYS if row[f"t_{key}"] is not None}
    return StoredResult(
        monitor_id=row["monitor_id"],
        started_at=row["started_at"],
        status=row["status"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        error_phase=row["error_phase"],
        rtt_ms=row["rtt_ms"],
        timings=timings,
        tls_days_left=row["tls_days_left"],
        maintenance=bool(row["maintenance"]),
        address=row["address"],
        node=row["node"],
        transcript=load_json(row["transcript"]),
        id=row["id"],
    )


# --- status ---------------------------------------------------------------------------


def check_status_update(update: StatusUpdate) -> None:
    if update.expected_version < 0:
        raise ValueError(f"expected_version must be >= 0, not {update.expected_version}")
    # Newer than expected, not necessarily by one: a writer that buffered through a
    # database outage coalesces several updates of one monitor into the last one.
    if update.status.version <= update.expected_version:
        raise ValueError(
            f"monitor {update.monitor_id}: status.version must exceed expected_version "
            f"({update.expected_version}), not {update.status.version}"
        )


def status_values(status: MonitorStatus) -> dict[str, Any]:
    return {
        "state": MonitorState(status.state).value,
        "since": as_utc_opt(status.since, "MonitorStatus.since"),
        "consecutive_failures": status.consecutive_failures,
        "alerts_sent": status.alerts_sent,
        "last_result_status": status.last_result_status,
        "last_checked_at": as_utc_opt(status.last_checked_at, "MonitorStatus.last_checked_at"),
        "next_due_at": as_utc_opt(status.next_due_at, "MonitorStatus.next_due_at"),
        "version": status.version,
    }


def status_from_row(row: RowMapping) -> MonitorStatus:
    return MonitorStatus(
        state=MonitorState(row["state"]),
        since=row["since"],
        consecutive_failures=row["consecutive_failures"],
        alerts_sent=row["alerts_sent"],
        last_result_status=row["last_result_status"],
        last_checked_at=row["last_checked_at"],
        next_due_at=row["next_due_at"],
        version=row["version"],
    )


# --- transitions ----------------------------------------------------------------------


def transition_values(transition: Transition) -> dict[str, Any]:
    return {
        "monitor_id": transition.monitor_id,
        "at": as_utc(transition.at, "Transition.at"),
        "from_state": MonitorState(transition.from_state).value,
        "to_state": MonitorState(transition.to_state).value,
        "reason_code": transition.reason_code,
        "reason_message": transition.reason_message,
        "alert": None if transition.alert is None else AlertKind(transition.alert).value,
        "alert_seq": transition.alert_seq,
        "extra": dump_json(transition.extra, "Transition.extra"),
    }


def transition_from_row(row: RowMapping) -> Transition:
    return Transition(
        monitor_id=row["monitor_id"],
        at=row["at"],
        from_state=MonitorState(row["from_state"]),
        to_state=MonitorState(row["to_state"]),
        reason_code=row["reason_code"],
        reason_message=row["reason_message"],
        alert=None if row["alert"] is None else AlertKind(row["alert"]),
        alert_seq=row["alert_seq"],
        id=row["id"],
        extra=load_json(row["extra"]) or {},
    )


# --- monitors -------------------------------------------------------------------------


def monitor_from_row(row: RowMapping) -> MonitorRow:
    return MonitorRow(
        id=row["id"],
        name=row["name"],
        probe=row["probe"],
        source=row["source"],
        enabled=bool(row["enabled"]),
        config=load_json(row["config"]) or {},
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deleted_at=row["deleted_at"],
    )
