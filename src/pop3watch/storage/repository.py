"""``Storage``: the repository every other part of pop3watch talks to.

Job: one async object per process with a method per question or write; it owns the engine
and the pool. Rule: every method validates its arguments first (``ValueError`` for caller
bugs) and converts every database failure into ``StorageError`` (see ``guard``); nothing
above this module sees SQLAlchemy. Writers run in ``BEGIN IMMEDIATE`` transactions on
SQLite so a compare-and-swap never fails half-way on a lock upgrade.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import TracebackType

from sqlalchemy import delete, select, update

from pop3watch.errors import StorageError
from pop3watch.model import MonitorStatus, Transition
from pop3watch.storage import monitors as monitor_sync
from pop3watch.storage import reports, rollups, writes
from pop3watch.storage.coltypes import as_utc, as_utc_opt
from pop3watch.storage.convert import (
    monitor_from_row,
    result_from_row,
    status_from_row,
    transition_from_row,
)
from pop3watch.storage.engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    Database,
    create_database,
    ensure_wal,
    masked_url,
    normalize_url,
    sqlite_file,
    url_password,
    while_locked,
)
from pop3watch.storage.guard import storage_errors
from pop3watch.storage.migrate import (
    current_revision,
    head_revision,
    known_revisions,
    sqlite_busy_timeout,
    sqlite_foreign_keys,
    upgrade,
)
from pop3watch.storage.records import (
    BatchOutcome,
    MonitorRecord,
    MonitorRow,
    ReportRow,
    RollupRow,
    StoredResult,
    WriteBatch,
)
from pop3watch.storage.schema import (
    meta,
    monitor_status,
    monitors,
    results,
    rollups_daily,
    rollups_hourly,
    transitions,
)

#: Raw results deleted per transaction by ``purge_results``.
PURGE_CHUNK = 10_000

_FileId = tuple[int, int]


#: Milliseconds one attempt at the migration's SQLite write lock waits (``while_locked``
#: repeats it): short, because that wait runs inside SQLite, where no Ctrl-C reaches it.
SETUP_LOCK_ATTEMPT_MS = 250


async def _migrate(db: Database) -> None:
    """Upgrade to head in one writer transaction (SQLite: with foreign keys off, see
    ``migrate.upgrade``; another process holding the write lock, migrating too or
    writing, is waited for)."""
    sqlite = db.dialect == "sqlite"
    async with db.write_engine.connect() as conn:

        async def attempt() -> None:
            async with conn.begin():
                await conn.run_sync(upgrade)

        if not sqlite:
            await attempt()
            return
        await conn.run_sync(sqlite_foreign_keys, False)
        await conn.run_sync(sqlite_busy_timeout, SETUP_LOCK_ATTEMPT_MS)
        try:
            await while_locked(attempt)
        finally:
            await conn.run_sync(sqlite_busy_timeout, SQLITE_BUSY_TIMEOUT_MS)
            await conn.run_sync(sqlite_foreign_keys, True)


class Storage:
    """The database behind pop3watch; create with ``await Storage.connect(url)``."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._password = url_password(db.url)
        self._file_id: _FileId | None = None

    # --- life cycle -------------------------------------------------------------------

    @classmethod
    async def connect(cls, url: str, *, migrate: bool = True) -> Storage:
        """Open the database and (by default) migrate it to the current schema.

        Raises ``ValueError`` for a URL that is not a supported database, ``StorageError``
        when the database cannot be reached or (with ``migrate=False``) its schema is not
        the one this code needs.
        """
        parsed = normalize_url(url)
        path = sqlite_file(parsed)
        if not migrate and path is not None and not path.exists():
            # A reader must not leave an empty database (and its directory) behind for a
            # mistyped --data-dir.
            raise StorageError(f"no pop3watch database at {path}: check --data-dir")
        async with storage_errors("opening the database", masked_url(parsed), url_password(parsed)):
            db = create_database(parsed)
        storage = cls(db)
        try:
            async with storage._errors("opening the database"):
                if db.dialect == "sqlite":
                    await ensure_wal(db.engine)
                if migrate:
                    await _migrate(db)
                else:
                    async with db.engine.connect() as conn:
                        storage._require_head(await conn.run_sync(current_revision))
            storage._file_id = storage._stat_file()
        except BaseException:
            await db.engine.dispose()
            raise
        return storage

    def _require_head(self, revision: str | None) -> None:
        """Readers (status, history, report) need the schema the service writes."""
        head = head_revision()
        if revision == head:
            return
        if revision is None:
            raise StorageError(
                f"{self.safe_url} holds no pop3watch data yet: `pop3watch run` creates it"
            )
        if revision in known_revisions():
            raise StorageError(
                f"the schema of {self.safe_url} is at revision {revision}, older than this "
                f"version of pop3watch reads ({head}): `pop3watch run` upgrades it"
            )
        raise StorageError(
            f"the schema of {self.safe_url} is at revision {revision}, which this version "
            f"of pop3watch does not know (it reads {head}): a newer pop3watch wrote it"
        )

    async def close(self) -> None:
        """Close every pooled connection (at shutdown; a later call would reconnect)."""
        await self._db.engine.dispose()

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._db.dialect

    @property
    def safe_url(self) -> str:
        """The database URL with its password hidden, fit for logs and messages."""
        return self._db.safe_url

    async def ping(self) -> None:
        """Raise ``StorageError`` unless the database answers and holds our schema."""
        async with self._errors("ping"), self._db.engine.connect() as conn:
            await conn.execute(select(meta.c.key).limit(1))

    # --- guards -----------------------------------------------------------------------

    @asynccontextmanager
    async def _errors(self, operation: str) -> AsyncIterator[None]:
        await self._check_file(operation)
        async with storage_errors(operation, self.safe_url, self._password):
            yield

    def _stat_file(self) -> _FileId | None:
        if self._db.sqlite_path is None:
            return None
        try:
            st = os.stat(self._db.sqlite_path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    async def _check_file(self, operation: str) -> None:
        """Notice a SQLite file deleted or replaced under us; costs one ``stat``.

        Pooled connections would go on writing into the old, unlinked file and nothing
        would fail: the data would silently vanish. Drop them, fail this operation, and let
        the next one open the file that is there now (never create an empty one: while the
        file is missing every operation fails here, before SQLite could create it).
        """
        if self._db.sqlite_path is None or self._file_id is None:
            return
        now = self._stat_file()
        if now == self._file_id:
            return
        await self._db.engine.dispose()
        what = "was deleted" if now is None else "was replaced"
        if now is not None:
            self._file_id = now
        raise StorageError(f"{operation} on {self.safe_url}: the database file {what}")

    # --- monitors ---------------------------------------------------------------------

    async def sync_monitors(
        self, records: Sequence[MonitorRecord], *, source: str = "file"
    ) -> dict[str, int]:
        """Make ``source``'s monitors exactly ``records``; returns name -> id for each.

        Upserts by name, soft-deletes this source's monitors missing from ``records`` and
        undeletes those that return; other sources' monitors are untouched. Raises
        ``ValueError`` for an invalid record (name over 64 characters, a duplicate, a config
        key holding a secret) and for a name owned by another source.
        """
        configs = monitor_sync.check_records(records, source)
        now = datetime.now(UTC)
        async with self._errors("syncing monitors"), self._db.write_engine.begin() as conn:
            return await monitor_sync.sync(conn, records, configs, source, now)

    async def list_monitors(self, *, include_deleted: bool = False) -> list[MonitorRow]:
        query = select(monitors).order_by(monitors.c.name)
        if not include_deleted:
            query = query.where(monitors.c.deleted_at.is_(None))
        async with self._errors("listing monitors"), self._db.engine.connect() as conn:
            return [monitor_from_row(row) for row in (await conn.execute(query)).mappings()]

    # --- status and the write path ------------------------------------------------------

    async def load_statuses(self) -> dict[int, MonitorStatus]:
        """Every stored status (deleted monitors included: CAS needs the true version)."""
        async with self._errors("loading statuses"), self._db.engine.connect() as conn:
            rows = (await conn.execute(select(monitor_status))).mappings()
            return {row["monitor_id"]: status_from_row(row) for row in rows}

    async def write_batch(self, batch: WriteBatch) -> BatchOutcome:
        """Store results, status swaps and transitions in one transaction.

        Raises ``ValueError`` before writing anything if a value is invalid; see
        ``writes`` for the compare-and-swap rule behind ``BatchOutcome.conflicts``.
        """
        result_rows, transition_rows = writes.prepare(batch)
        if not (result_rows or transition_rows or batch.statuses):
            return BatchOutcome(results_written=0, transitions_written=0, conflicts=[])
        async with self._errors("writing a batch"), self._db.write_engine.begin() as conn:
            return await writes.write(conn, self.dialect, batch, result_rows, transition_rows)

    # --- results ----------------------------------------------------------------------

    async def results(
        self,
        monitor_id: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[StoredResult]:
        """Results in ``[since, until)``, oldest first; with ``limit``, the newest ``limit``."""
        query = select(results).where(results.c.monitor_id == monitor_id)
        if since is not None:
            query = query.where(results.c.started_at >= as_utc(since, "since"))
        if until is not None:
            query = query.where(results.c.started_at < as_utc(until, "until"))
        query = query.order_by(results.c.started_at.desc(), results.c.id.desc())
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must be >= 0, not {limit}")
            query = query.limit(limit)
        async with self._errors("reading results"), self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [result_from_row(row) for row in reversed(rows)]

    async def last_results(
        self, monitor_ids: Sequence[int] | None = None
    ) -> dict[int, StoredResult]:
        """The newest result of each monitor that has one (all monitors when None)."""
        newer = results.alias("newest")
        latest = (
            select(newer.c.id)
            .where(newer.c.monitor_id == monitors.c.id)
            .order_by(newer.c.started_at.desc(), newer.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        query = select(results).select_from(monitors.join(results, results.c.id == latest))
        found: dict[int, StoredResult] = {}
        async with self._errors("reading last results"), self._db.engine.connect() as conn:
            groups = [None] if monitor_ids is None else reports.chunks(list(monitor_ids))
            for ids in groups:
                chunk = query if ids is None else query.where(monitors.c.id.in_(ids))
                for row in (await conn.execute(chunk)).mappings():
                    found[row["monitor_id"]] = result_from_row(row)
        return found

    async def purge_results(self, older_than: datetime) -> int:
        """Delete raw results started before ``older_than``, in chunks; rollups stay."""
        cutoff = as_utc(older_than, "older_than")
        doomed = (
            select(results.c.id).where(results.c.started_at < cutoff).limit(PURGE_CHUNK)
        ).scalar_subquery()
        deleted = 0
        while True:
            async with self._errors("purging results"), self._db.write_engine.begin() as conn:
                deleting = await conn.execute(delete(results).where(results.c.id.in_(doomed)))
                count = deleting.rowcount
            deleted += count
            if count < PURGE_CHUNK:
                return deleted

    # --- transitions and the alert outbox -----------------------------------------------

    async def transitions(
        self,
        *,
        monitor_id: int | None = None,
        since: datetime | None = None,
        alerts_only: bool = False,
    ) -> list[Transition]:
        """Transitions oldest first, optionally of one monitor, from ``since``, alerts only."""
        query = select(transitions)
        if monitor_id is not None:
            query = query.where(transitions.c.monitor_id == monitor_id)
        if since is not None:
            query = query.where(transitions.c.at >= as_utc(since, "since"))
        if alerts_only:
            query = query.where(transitions.c.alert.is_not(None))
        query = query.order_by(transitions.c.at, transitions.c.id)
        async with self._errors("reading transitions"), self._db.engine.connect() as conn:
            return [transition_from_row(row) for row in (await conn.execute(query)).mappings()]

    async def pending_alerts(self, *, limit: int = 100) -> list[Transition]:
        """Undelivered alerts, oldest first (served by the partial index on the outbox)."""
        query = (
            select(transitions)
            .where(transitions.c.alert.is_not(None), transitions.c.delivered_at.is_(None))
            .order_by(transitions.c.at, transitions.c.id)
            .limit(limit)
        )
        async with self._errors("reading pending alerts"), self._db.engine.connect() as conn:
            return [transition_from_row(row) for row in (await conn.execute(query)).mappings()]

    async def mark_delivered(self, ids: Sequence[int], at: datetime) -> None:
        """Mark alerts delivered; an alert already marked keeps its first delivery time."""
        when = as_utc(at, "at")
        if not ids:
            return
        async with self._errors("marking alerts delivered"), self._db.write_engine.begin() as conn:
            for chunk in reports.chunks(list(ids)):
                await conn.execute(
                    update(transitions)
                    .where(transitions.c.id.in_(chunk), transitions.c.delivered_at.is_(None))
                    .values(delivered_at=when)
                )

    # --- rollups, uptime, reports -------------------------------------------------------

    async def rollup(self, now: datetime) -> int:
        """Roll up closed hours and days from raw results; returns rows written.

        Idempotent: only hours after the watermark are computed, and upserts make a rerun
        (after ``rewind_rollups``) harmless. See ``rollups`` for how the work is cut.
        """
        async with self._errors("rolling up results"):
            return await rollups.rollup(self._db, as_utc(now, "now"))

    async def rollup_watermark(self) -> datetime | None:
        """Every hour before this instant is rolled up (None: never rolled up)."""
        async with self._errors("reading the rollup watermark"), self._db.engine.connect() as c:
            return await rollups.read_watermark(c)

    async def rewind_rollups(self, to: datetime | None) -> None:
        """Move the watermark back (None: forget it) so the next ``rollup`` recomputes.

        For repairs, e.g. after results were imported for hours already rolled up.
        """
        when = as_utc_opt(to, "to")
        async with self._errors("rewinding rollups"), self._db.write_engine.begin() as conn:
            await rollups.write_watermark(conn, self.dialect, when, forward_only=False)

    async def rollups(
        self,
        monitor_id: int,
        *,
        daily: bool = False,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[RollupRow]:
        """Stored hourly (or daily) rollups of one monitor with bucket in ``[since, until)``."""
        table = rollups_daily if daily else rollups_hourly
        query = select(table).where(table.c.monitor_id == monitor_id).order_by(table.c.bucket)
        if since is not None:
            query = query.where(table.c.bucket >= as_utc(since, "since"))
        if until is not None:
            query = query.where(table.c.bucket < as_utc(until, "until"))
        async with self._errors("reading rollups"), self._db.engine.connect() as conn:
            return [RollupRow(**row) for row in (await conn.execute(query)).mappings()]

    async def uptime(
        self, monitor_ids: Sequence[int], *, since: datetime, now: datetime
    ) -> dict[int, float | None]:
        """Percent of scored checks not down over ``[since, now)`` (None: no checks).

        Rollups answer the closed hours, raw results the rest; see ``periods.plan``.
        """
        start, end = as_utc(since, "since"), as_utc(now, "now")
        async with self._errors("computing uptime"), self._db.engine.connect() as conn:
            sums = await reports.totals(conn, list(monitor_ids), start, end, with_p95=False)
        return {monitor_id: total.uptime_pct for monitor_id, total in sums.items()}

    async def report(
        self,
        *,
        since: datetime,
        until: datetime,
        monitor_ids: Sequence[int] | None = None,
    ) -> list[ReportRow]:
        """One row per monitor (all current monitors when None), ordered by name.

        See ``reports`` for how every figure is derived, including the p95 approximation.
        """
        start, end = as_utc(since, "since"), as_utc(until, "until")
        async with self._errors("building a report"), self._db.engine.connect() as conn:
            return await reports.report(conn, start, end, monitor_ids)
