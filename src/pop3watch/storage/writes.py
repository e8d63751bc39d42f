"""The batched write path: results, status compare-and-swap, transitions (the outbox).

Job: store one engine tick in one transaction. Rule: a status is written only where the
stored ``version`` is the one the engine derived it from (healthchecks' habit); when that
fails another writer owns the monitor, so this batch's transitions for it (and the alerts
they carry) are dropped too, and only one writer ever sends an alert.

Statuses are applied in ``monitor_id`` order so two PostgreSQL writers touching the same
monitors lock rows in the same order and never deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from pop3watch.storage import dml
from pop3watch.storage.convert import (
    check_status_update,
    result_values,
    status_values,
    transition_values,
)
from pop3watch.storage.records import BatchOutcome, StatusUpdate, WriteBatch
from pop3watch.storage.schema import monitor_status, results, transitions


def prepare(batch: WriteBatch) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Validate the whole batch before any SQL runs; returns result and transition rows."""
    for status in batch.statuses:
        check_status_update(status)
        status_values(status.status)
    return (
        [result_values(result) for result in batch.results],
        [transition_values(transition) for transition in batch.transitions],
    )


async def write(
    conn: AsyncConnection,
    dialect: str,
    batch: WriteBatch,
    result_rows: Sequence[dict[str, object]],
    transition_rows: Sequence[dict[str, object]],
) -> BatchOutcome:
    """Write inside the caller's write transaction; see the module docstring."""
    conflicts: set[int] = set()
    for status in sorted(batch.statuses, key=lambda s: s.monitor_id):
        if status.monitor_id in conflicts:
            continue
        if not await _swap_status(conn, dialect, status):
            conflicts.add(status.monitor_id)
    if result_rows:
        await conn.execute(results.insert(), list(result_rows))
    kept = [row for row in transition_rows if row["monitor_id"] not in conflicts]
    if kept:
        await conn.execute(transitions.insert(), kept)
    return BatchOutcome(
        results_written=len(result_rows),
        transitions_written=len(kept),
        conflicts=sorted(conflicts),
    )


async def _swap_status(conn: AsyncConnection, dialect: str, status: StatusUpdate) -> bool:
    values = status_values(status.status)
    if status.expected_version == 0:
        inserted = (
            dml.insert(dialect, monitor_status)
            .values(monitor_id=status.monitor_id, **values)
            .on_conflict_do_nothing(index_elements=["monitor_id"])
            .returning(monitor_status.c.monitor_id)
        )
        return (await conn.execute(inserted)).first() is not None
    updated = (
        update(monitor_status)
        .where(
            monitor_status.c.monitor_id == status.monitor_id,
            monitor_status.c.version == status.expected_version,
        )
        .values(values)
        .returning(monitor_status.c.monitor_id)
    )
    return (await conn.execute(updated)).first() is not None
