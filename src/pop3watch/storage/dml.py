"""``INSERT .. ON CONFLICT`` for both dialects.

Job: the one place that picks the dialect's ``insert`` construct. Rule: both SQLite (3.24+)
and PostgreSQL speak the same ``ON CONFLICT`` clauses, so callers write them once.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite


def insert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def upsert(dialect: str, table: Table, keys: Sequence[str]) -> postgresql.Insert | sqlite.Insert:
    """Insert, or on a key clash overwrite every non-key column with the new values."""
    stmt = insert(dialect, table)
    columns = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=columns)
