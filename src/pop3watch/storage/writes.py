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

from sqlalchemy import bindparam, update
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
    ordered = sorted(batch.statuses, key=lambda s: s.monitor_id)
    updates = [s for s in ordered if s.expected_version > 0]
    conflicts: set[int] = set()
    if not (updates and await _swap_all(conn, updates)):
        updates = []  # not done in bulk: every status goes the exact, per-row way
    for status in ordered:
        if status in updates or status.monitor_id in conflicts:
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


STATUS_COLUMNS = (
    "state",
    "since",
    "consecutive_failures",
    "alerts_sent",
    "last_result_status",
    "last_checked_at",
    "next_due_at",
    "version",
)
_BULK_SWAP = (
    update(monitor_status)
    .where(
        monitor_status.c.monitor_id == bindparam("b_monitor_id"),
        monitor_status.c.version == bindparam("b_expected"),
    )
    .values({name: bindparam(f"v_{name}") for name in STATUS_COLUMNS})
)


async def _swap_all(conn: AsyncConnection, updates: Sequence[StatusUpdate]) -> bool:
    """All compare-and-swaps in one executemany, where the driver reports a reliable total
    row count: equal to the number of updates means every swap won (the common case, one
    round trip instead of one per monitor). Anything less is undone (a savepoint) and the
    caller redoes them one by one to learn which monitors lost."""
    if not conn.dialect.supports_sane_multi_rowcount:
        return False
    params = [
        {
            "b_monitor_id": u.monitor_id,
            "b_expected": u.expected_version,
            **{f"v_{name}": value for name, value in status_values(u.status).items()},
        }
        for u in updates
    ]
    savepoint = await conn.begin_nested()
    result = await conn.execute(_BULK_SWAP, params)
    if result.rowcount == len(params):
        await savepoint.commit()
        return True
    await savepoint.rollback()
    return False


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
