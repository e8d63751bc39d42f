"""Initial schema: monitors, status, results, transitions (outbox), rollups, meta.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Frozen on purpose: it spells out every column instead of importing ``schema.metadata``,
so later changes to the schema module never rewrite history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMING_KEYS = ("dns", "connect", "tls", "greeting", "capa", "auth", "stat", "quit", "total")
_PENDING = "alert IS NOT NULL AND delivered_at IS NULL"


def _ts(name: str, *, nullable: bool) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _big_id() -> sa.Column[Any]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)


def _monitor_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["monitor_id"],
        ["monitors.id"],
        name=f"fk_{table}_monitor_id_monitors",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "monitors",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("probe", sa.String(32), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("config", sa.Text(), nullable=False, server_default="{}"),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        _ts("deleted_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_monitors"),
        sa.UniqueConstraint("name", name="uq_monitors_name"),
        sa.CheckConstraint("source IN ('file', 'api')", name="ck_monitors_source"),
    )
    op.create_table(
        "monitor_status",
        sa.Column("monitor_id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("state", sa.String(16), nullable=False),
        _ts("since", nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("alerts_sent", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_result_status", sa.String(8), nullable=True),
        _ts("last_checked_at", nullable=True),
        _ts("next_due_at", nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("owner_node", sa.String(128), nullable=True),
        _ts("lease_until", nullable=True),
        sa.PrimaryKeyConstraint("monitor_id", name="pk_monitor_status"),
        _monitor_fk("monitor_status"),
    )
    op.create_table(
        "results",
        _big_id(),
        sa.Column("monitor_id", sa.Integer(), nullable=False),
        _ts("started_at", nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_phase", sa.String(16), nullable=True),
        sa.Column("rtt_ms", sa.Double(), nullable=True),
        *(sa.Column(f"t_{key}", sa.Double(), nullable=True) for key in TIMING_KEYS),
        sa.Column("tls_days_left", sa.Integer(), nullable=True),
        sa.Column("maintenance", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("address", sa.String(255), nullable=True),
        sa.Column("node", sa.String(128), nullable=True),
        sa.Column("transcript", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_results"),
        _monitor_fk("results"),
        sa.CheckConstraint("status IN ('up', 'warn', 'down')", name="ck_results_status"),
    )
    op.create_index(
        "ix_results_monitor_time_covering",
        "results",
        ["monitor_id", "started_at", "status", "maintenance", "rtt_ms"],
    )
    op.create_index("ix_results_started_at", "results", ["started_at"])
    op.create_table(
        "transitions",
        _big_id(),
        sa.Column("monitor_id", sa.Integer(), nullable=False),
        _ts("at", nullable=False),
        sa.Column("from_state", sa.String(16), nullable=False),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("reason_code", sa.String(64), nullable=True),
        sa.Column("reason_message", sa.Text(), nullable=False),
        sa.Column("alert", sa.String(16), nullable=True),
        sa.Column("alert_seq", sa.Integer(), nullable=True),
        _ts("delivered_at", nullable=True),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("extra", sa.Text(), nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("id", name="pk_transitions"),
        _monitor_fk("transitions"),
    )
    op.create_index("ix_transitions_monitor_id_at", "transitions", ["monitor_id", "at"])
    op.create_index(
        "ix_transitions_pending",
        "transitions",
        ["at", "id"],
        postgresql_where=sa.text(_PENDING),
        sqlite_where=sa.text(_PENDING),
    )
    for name in ("rollups_hourly", "rollups_daily"):
        op.create_table(
            name,
            sa.Column("monitor_id", sa.Integer(), nullable=False, autoincrement=False),
            _ts("bucket", nullable=False),
            sa.Column("count", sa.Integer(), nullable=False),
            sa.Column("failures", sa.Integer(), nullable=False),
            sa.Column("warnings", sa.Integer(), nullable=False),
            sa.Column("rtt_count", sa.Integer(), nullable=False),
            sa.Column("rtt_min", sa.Double(), nullable=True),
            sa.Column("rtt_max", sa.Double(), nullable=True),
            sa.Column("rtt_sum", sa.Double(), nullable=True),
            sa.Column("rtt_p95", sa.Double(), nullable=True),
            sa.PrimaryKeyConstraint("monitor_id", "bucket", name=f"pk_{name}"),
            _monitor_fk(name),
            sqlite_with_rowid=False,
        )
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_meta"),
    )


def downgrade() -> None:
    for name in ("meta", "rollups_daily", "rollups_hourly"):
        op.drop_table(name)
    op.drop_index("ix_transitions_pending", table_name="transitions")
    op.drop_index("ix_transitions_monitor_id_at", table_name="transitions")
    op.drop_table("transitions")
    op.drop_index("ix_results_started_at", table_name="results")
    op.drop_index("ix_results_monitor_time_covering", table_name="results")
    op.drop_table("results")
    op.drop_table("monitor_status")
    op.drop_table("monitors")
