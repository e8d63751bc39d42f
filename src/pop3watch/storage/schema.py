"""The tables of pop3watch, as SQLAlchemy Core ``Table`` objects.

Job: one description of the schema that queries are written against and that a test
compares with what the migrations build. Rule: a change here needs a new migration in
``migrations/versions``; the schema test fails until both agree.

Layout, and why:
- ``monitors`` is small; ``name`` is unique across sources, so a file monitor and an API
  monitor can never be confused in alerts and reports. Rows are soft-deleted, history stays.
- ``monitor_status`` is one row per monitor, updated by compare-and-swap on ``version``.
- ``results`` is the big raw table: indexed by (monitor_id, started_at) for per-monitor
  history, extended with status, maintenance and rtt_ms so the aggregating scans (rollups,
  the not yet rolled-up part of reports) read the index only; and by started_at alone for
  skipping empty stretches and for purging.
- ``transitions`` is append-only and doubles as the alert outbox; a partial index holds only
  undelivered alerts, so polling the outbox stays cheap however long the history grows.
- ``rollups_hourly`` / ``rollups_daily`` keep per-bucket aggregates forever; their primary key
  (monitor_id, bucket) serves "this monitor over this range" seeks.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
)

from pop3watch.storage.coltypes import UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: Integer primary keys of the big tables: BIGINT on PostgreSQL, rowid alias on SQLite.
BigId = BigInteger().with_variant(Integer, "sqlite")

MONITOR_NAME_MAX = 64
SOURCES = ("file", "api")
RESULT_STATUSES = ("up", "warn", "down")
TIMING_KEYS = ("dns", "connect", "tls", "greeting", "capa", "auth", "stat", "quit", "total")


def _monitor_fk() -> ForeignKey:
    return ForeignKey("monitors.id", ondelete="CASCADE")


monitors = Table(
    "monitors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(MONITOR_NAME_MAX), nullable=False, unique=True),
    Column("probe", String(32), nullable=False),
    Column("source", String(8), nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=false()),
    Column("config", Text, nullable=False, server_default="{}"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("deleted_at", UtcDateTime, nullable=True),
    CheckConstraint("source IN ('file', 'api')", name="source"),
)

monitor_status = Table(
    "monitor_status",
    metadata,
    Column("monitor_id", Integer, _monitor_fk(), primary_key=True, autoincrement=False),
    Column("state", String(16), nullable=False),
    Column("since", UtcDateTime, nullable=True),
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("alerts_sent", Integer, nullable=False, server_default="0"),
    Column("last_result_status", String(8), nullable=True),
    Column("last_checked_at", UtcDateTime, nullable=True),
    Column("next_due_at", UtcDateTime, nullable=True),
    Column("version", Integer, nullable=False),
    Column("owner_node", String(128), nullable=True),
    Column("lease_until", UtcDateTime, nullable=True),
)

results = Table(
    "results",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("monitor_id", Integer, _monitor_fk(), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("status", String(8), nullable=False),
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("error_phase", String(16), nullable=True),
    Column("rtt_ms", Double, nullable=True),
    *(Column(f"t_{key}", Double, nullable=True) for key in TIMING_KEYS),
    Column("tls_days_left", Integer, nullable=True),
    Column("maintenance", Boolean, nullable=False, server_default=false()),
    Column("address", String(255), nullable=True),
    Column("node", String(128), nullable=True),
    Column("transcript", Text, nullable=True),
    CheckConstraint("status IN ('up', 'warn', 'down')", name="status"),
    # (monitor_id, started_at) plus the columns rollups and reports aggregate: those scans
    # read the index alone and never touch the table rows (transcripts, messages).
    Index(
        "ix_results_monitor_time_covering",
        "monitor_id",
        "started_at",
        "status",
        "maintenance",
        "rtt_ms",
    ),
    Index("ix_results_started_at", "started_at"),
)

transitions = Table(
    "transitions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("monitor_id", Integer, _monitor_fk(), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column("reason_code", String(64), nullable=True),
    Column("reason_message", Text, nullable=False),
    Column("alert", String(16), nullable=True),
    Column("alert_seq", Integer, nullable=True),
    Column("delivered_at", UtcDateTime, nullable=True),
    Column("claimed_by", String(128), nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("extra", Text, nullable=False, server_default="{}"),
    Index("ix_transitions_monitor_id_at", "monitor_id", "at"),
    Index(
        "ix_transitions_pending",
        "at",
        "id",
        postgresql_where=text("alert IS NOT NULL AND delivered_at IS NULL"),
        sqlite_where=text("alert IS NOT NULL AND delivered_at IS NULL"),
    ),
)


def _rollup_table(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("monitor_id", Integer, _monitor_fk(), primary_key=True, autoincrement=False),
        Column("bucket", UtcDateTime, primary_key=True),
        Column("count", Integer, nullable=False),
        Column("failures", Integer, nullable=False),
        Column("warnings", Integer, nullable=False),
        Column("rtt_count", Integer, nullable=False),
        Column("rtt_min", Double, nullable=True),
        Column("rtt_max", Double, nullable=True),
        Column("rtt_sum", Double, nullable=True),
        Column("rtt_p95", Double, nullable=True),
        sqlite_with_rowid=False,
    )


rollups_hourly = _rollup_table("rollups_hourly")
rollups_daily = _rollup_table("rollups_daily")

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
