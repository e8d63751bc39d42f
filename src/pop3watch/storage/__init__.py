"""Storage: the only part of pop3watch that writes SQL.

Job: persist monitors, their status (compare-and-swap), raw results, transitions (the alert
outbox) and rollups, on SQLite (the embedded default) or PostgreSQL, and answer uptime and
report questions quickly. Rule: callers see records and domain types, never SQLAlchemy;
every database failure surfaces as ``pop3watch.errors.StorageError``.
"""

from pop3watch.storage.engine import DEFAULT_URL, default_sqlite_url, masked_url, normalize_url
from pop3watch.storage.records import (
    BatchOutcome,
    MonitorRecord,
    MonitorRow,
    ReportRow,
    RollupRow,
    StatusUpdate,
    StoredResult,
    WriteBatch,
)
from pop3watch.storage.repository import Storage

__all__ = [
    "DEFAULT_URL",
    "BatchOutcome",
    "MonitorRecord",
    "MonitorRow",
    "ReportRow",
    "RollupRow",
    "StatusUpdate",
    "Storage",
    "StoredResult",
    "WriteBatch",
    "default_sqlite_url",
    "masked_url",
    "normalize_url",
]
