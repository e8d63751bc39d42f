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

from sqlalchemy import bindparam, select, update
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
    conflicts = await _swap_statuses(conn, dialect, ordered) if ordered else set()
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
_CHUNK = 5_000  # ids per IN (...) list, well under every driver's parameter limit


async def _stored_versions(
    conn: AsyncConnection, dialect: str, ids: Sequence[int]
) -> dict[int, int]:
    """Current versions, row-locked on PostgreSQL (SQLite writers hold the database lock)."""
    versions: dict[int, int] = {}
    for start in range(0, len(ids), _CHUNK):
        query = select(monitor_status.c.monitor_id, monitor_status.c.version).where(
            monitor_status.c.monitor_id.in_(ids[start : start + _CHUNK])
        )
        if dialect == "postgresql":
            query = query.with_for_update()
        versions.update(
            {int(mid): int(version) for mid, version in (await conn.execute(query)).all()}
        )
    return versions


async def _swap_statuses(
    conn: AsyncConnection, dialect: str, ordered: Sequence[StatusUpdate]
) -> set[int]:
    """Every compare-and-swap of the batch, set-based: read the stored versions (locked),
    decide winners and losers in Python, then one batched UPDATE for the winners. A few
    round trips per batch instead of one per monitor. First statuses (no row yet) go in
    as multi-row ``INSERT .. ON CONFLICT DO NOTHING RETURNING``: a row another writer
    inserted first is simply not returned, and that monitor is a conflict."""
    stored = await _stored_versions(conn, dialect, [u.monitor_id for u in ordered])
    conflicts: set[int] = set()
    winners: list[dict[str, object]] = []
    firsts: list[StatusUpdate] = []
    for u in ordered:
        current = stored.get(u.monitor_id)
        if u.expected_version == 0 and current is None:
            firsts.append(u)
        elif current == u.expected_version:
            values = status_values(u.status)
            winners.append(
                {
                    "b_monitor_id": u.monitor_id,
                    "b_expected": u.expected_version,
                    **{f"v_{name}": values[name] for name in STATUS_COLUMNS},
                }
            )
        else:
            conflicts.add(u.monitor_id)
    if firsts:
        conflicts |= await _insert_first_statuses(conn, dialect, firsts)
    if winners:
        await conn.execute(_BULK_SWAP, winners)
    return conflicts


_INSERT_CHUNK = 1_000  # rows per multi-row INSERT: 9 parameters each, under every limit


async def _insert_first_statuses(
    conn: AsyncConnection, dialect: str, firsts: Sequence[StatusUpdate]
) -> set[int]:
    """Insert every monitor's first status; returns the monitors another writer beat.

    Rows go in monitor_id order (the caller sorted them), so two PostgreSQL writers
    inserting overlapping sets wait on each other in the same order and never deadlock.
    """
    lost: set[int] = set()
    for start in range(0, len(firsts), _INSERT_CHUNK):
        chunk = firsts[start : start + _INSERT_CHUNK]
        rows = [{"monitor_id": u.monitor_id, **status_values(u.status)} for u in chunk]
        inserted = (
            dml.insert(dialect, monitor_status)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["monitor_id"])
            .returning(monitor_status.c.monitor_id)
        )
        won = {int(mid) for (mid,) in (await conn.execute(inserted)).all()}
        lost.update(u.monitor_id for u in chunk if u.monitor_id not in won)
    return lost
