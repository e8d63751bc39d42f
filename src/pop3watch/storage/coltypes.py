"""Column types that keep the storage boundary honest about time.

Job: every timestamp enters and leaves the database as a timezone-aware UTC ``datetime``.
Rule: a naive ``datetime`` is a bug in the caller, never silently guessed; the repository
validates values first (``ValueError``) and this type is the backstop.

SQLite has no time zone type: SQLAlchemy stores ``DateTime`` as text and drops ``tzinfo``
without converting. Binding ``12:00+02:00`` would store ``12:00``, two hours wrong. So we
convert to UTC before binding and attach UTC to what comes back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect
from sqlalchemy.types import TypeDecorator


def as_utc(value: datetime, what: str = "timestamp") -> datetime:
    """``value`` converted to UTC; raises ``ValueError`` for a naive ``datetime``."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (got naive {value.isoformat()})")
    return value.astimezone(UTC)


def as_utc_opt(value: datetime | None, what: str = "timestamp") -> datetime | None:
    return None if value is None else as_utc(value, what)


class UtcDateTime(TypeDecorator[datetime]):
    """``TIMESTAMP WITH TIME ZONE`` on PostgreSQL, UTC text on SQLite; always aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = as_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # an aggregate SQLite did not type (defensive)
            value = datetime.fromisoformat(value)
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value)!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
